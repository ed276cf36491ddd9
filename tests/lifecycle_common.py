# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from .common import ReferralCommon

# The default stages of a new install (data/partner_lifecycle_stage_data.xml),
# written again in the tests: a database upgraded from an older version
# keeps its own (the stages are noupdate data).
SEED_CRITERIA = {
    "stage_suspect": {},
    "stage_prospect": {"min_quotation_count": 1},
    "stage_client": {"min_order_count": 1},
    "stage_loyal": {"min_order_count": 2},
    "stage_fan": {
        "min_recent_order_count": 3,
        "recent_order_months": 12,
        "min_referral_count": 1,
    },
    "stage_addict": {
        "min_renewal_count": 1,
        "min_tenure_months": 24,
        "require_active_subscription": True,
    },
}
CRITERIA_RESET = {
    "min_quotation_count": 0,
    "min_order_count": 0,
    "min_recent_order_count": 0,
    "recent_order_months": 12,
    "min_revenue": 0.0,
    "revenue_months": 12,
    "max_days_since_last_order": 0,
    "require_active_subscription": False,
    "partner_domain": "[]",
    "min_referral_count": 0,
    "min_referral_won_count": 0,
    "min_paid_on_time_rate": 0,
    "min_tenure_months": 0,
    "min_renewal_count": 0,
    "min_days_before_down": 30,
}


def legacy_stages(env):
    """The stages as the first versions seeded them: a Fan by its orders
    alone (3 in 12 months), an Addict by 5 orders in 24 months and a
    subscription, every stage moving contacts down at once."""
    ref = env.ref
    stages = env["partner.lifecycle.stage"].search([])  # pylint: disable=no-search-all
    stages.min_days_before_down = 0
    ref("sale_referral_lifecycle.stage_fan").min_referral_count = 0
    ref("sale_referral_lifecycle.stage_addict").write(
        {
            "min_renewal_count": 0,
            "min_tenure_months": 0,
            "min_recent_order_count": 5,
            "recent_order_months": 24,
            "require_active_subscription": True,
        }
    )
    env.company.lifecycle_move_back = "automatic"


class LifecycleCommon(ReferralCommon):
    """The seeds' stages (Suspect to Addict) with their criteria as a new
    install has them, a subscription product and helpers to order."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for xmlid, criteria in SEED_CRITERIA.items():
            stage = cls.env.ref(f"sale_referral_lifecycle.{xmlid}")
            stage.write(dict(CRITERIA_RESET, **criteria))
            setattr(cls, xmlid.removeprefix("stage_"), stage)
        (cls.company | cls.other_company).lifecycle_move_back = "automatic"
        cls.subscription = cls.env["product.product"].create(
            {
                "name": "Yearly subscription",
                "type": "service",
                "list_price": 1000.0,
                "subscription_months": 12,
            }
        )
        cls.customer = cls._create_customer("Lifecycle Ltd")

    def _orders(self, partner, count, date=None, product=None, company=None):
        """``count`` confirmed orders of ``partner`` (in ``company``, dated
        ``date``), the lifecycle queue processed."""
        company = company or self.env.company
        orders = self.env["sale.order"]
        for _i in range(count):
            order = (
                self.env["sale.order"]
                .with_company(company)
                .create(
                    {
                        "partner_id": partner.id,
                        "company_id": company.id,
                        "order_line": [
                            (
                                0,
                                0,
                                {
                                    "product_id": (product or self.product).id,
                                    "product_uom_qty": 1,
                                },
                            )
                        ],
                    }
                )
            )
            order.action_confirm()
            if date:
                order.date_order = date
            orders |= order
        self._process_lifecycle_queue()
        return orders

    def _stage_in(self, partner, company=None):
        return partner.with_company(company or self.env.company).lifecycle_stage_id
