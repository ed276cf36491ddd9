# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from freezegun import freeze_time

from ..models.followup.partner_followup_engine import MAX_ID
from .common import ReferralCommon


class FollowupCommon(ReferralCommon):
    """Referral data, the default follow-up rules archived, and helpers to
    build rules and run the engine."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Rule = cls.env["partner.followup.rule"]
        cls.Log = cls.env["partner.followup.log"]
        cls.Engine = cls.env["partner.followup.engine"]
        cls.Rule.search([]).active = False
        cls.calendar = cls.company.resource_calendar_id
        cls.calendar.tz = "Europe/Brussels"
        cls.company.followup_min_gap_days = 2
        cls.call = cls.env.ref("mail.mail_activity_data_call")
        cls.partner_plan = cls._plan("res.partner", "Call the contact")
        cls.order_plan = cls._plan("sale.order", "Chase the quotation")
        cls.customer = cls._create_customer(
            "Followed Ltd", user_id=cls.salesman.id, email="buyer@followed.example.com"
        )

    @classmethod
    def _plan(cls, model, summary, responsible_type="partner_salesperson", delay=0):
        return cls.env["mail.activity.plan"].create(
            {
                "name": summary,
                "res_model": model,
                "template_ids": [
                    (
                        0,
                        0,
                        {
                            "activity_type_id": cls.call.id,
                            "summary": summary,
                            "responsible_type": responsible_type,
                            "delay_count": delay,
                            "delay_unit": "days",
                            "delay_from": "after_plan_date",
                        },
                    )
                ],
            }
        )

    @classmethod
    def _rule(cls, trigger, steps, **values):
        """A rule of ``trigger`` whose steps are (name, delay, plan,
        template) tuples."""
        return cls.Rule.create(
            dict(
                {
                    "name": f"Rule {trigger}",
                    "trigger": trigger,
                    "step_ids": [
                        (
                            0,
                            0,
                            {
                                "name": name,
                                "sequence": index,
                                "delay": delay,
                                "activity_plan_id": plan.id if plan else False,
                                "mail_template_id": template.id if template else False,
                            },
                        )
                        for index, (name, delay, plan, template) in enumerate(steps)
                    ],
                },
                **values,
            )
        )

    @classmethod
    def _process_lifecycle_queue(cls):
        """What the lifecycle queue's job does within a minute of an order's
        change: stages and subscription ends recomputed."""
        while cls.env["partner.lifecycle.queue"]._cron_process():
            pass

    @classmethod
    def _confirm_order(cls, partner, **values):
        order = super()._confirm_order(partner, **values)
        cls._process_lifecycle_queue()
        return order

    def _run(self, **kwargs):
        """The engine on the contacts created by the tests (the demo data's
        quotations and customers left alone), once the lifecycle queue's job
        ran."""
        self._process_lifecycle_queue()
        kwargs.setdefault("partner_range", (self.sponsor.id, MAX_ID))
        return self.Engine._run(**kwargs)

    def _logs(self, rule=None, **domain):
        terms = [(key, "=", value) for key, value in domain.items()]
        if rule:
            terms.append(("rule_id", "=", rule.id))
        return self.Log.search(terms, order="id")

    def _followup_activities(self, record):
        return record.activity_ids.filtered("followup_log_id")

    def _send_quotation(self, partner, date, sent=None):
        """A quotation dated ``date``, sent at ``sent`` (the same moment by
        default)."""
        order = self._create_order(partner, date_order=date)
        with freeze_time(sent or date):
            order.write({"state": "sent"})
        return order

    def _set_create_date(self, records, when):
        """The ORM dates creations with the transaction's start, whatever
        time is frozen."""
        records.flush_recordset()
        self.env.cr.execute(
            f"UPDATE {records._table} SET create_date = %s WHERE id IN %s",  # noqa: S608
            [when, tuple(records.ids)],
        )
        records.invalidate_recordset(["create_date"])
