# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from collections import Counter
from datetime import date

import psycopg2.errors
from freezegun import freeze_time

from odoo import SUPERUSER_ID, api
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger


@tagged("post_install", "-at_install")
class TestFollowupConcurrency(TransactionCase):
    """Two Odoo servers running the cron at once: two real cursors on
    committed data (removed at the end), each in its own transaction."""

    def _committed(self, function):
        with self.registry.cursor() as cr:
            result = function(api.Environment(cr, SUPERUSER_ID, {}))
            # Another transaction than the test's: committed so that the two
            # cursors see it, removed by the test at the end.
            cr.commit()  # pylint: disable=invalid-commit
        return result

    def _create_data(self, env):
        partner = env["res.partner"].create(
            {
                "name": "Two Servers Ltd",
                "is_company": True,
                "subscription_end_date": date(2026, 12, 10),
            }
        )
        plan = env["mail.activity.plan"].create(
            {
                "name": "Two servers call",
                "res_model": "res.partner",
                "template_ids": [
                    (
                        0,
                        0,
                        {
                            "activity_type_id": env.ref(
                                "mail.mail_activity_data_call"
                            ).id,
                            "summary": "Two servers call",
                            "responsible_type": "other",
                            "responsible_id": env.ref("base.user_admin").id,
                        },
                    )
                ],
            }
        )
        rule = env["partner.followup.rule"].create(
            {
                "name": "Two servers",
                "trigger": "subscription_end",
                "delay_type": "calendar",
                "company_id": env.company.id,
                "step_ids": [
                    (
                        0,
                        0,
                        {
                            "name": "Two servers -10",
                            "delay": -10,
                            "activity_plan_id": plan.id,
                        },
                    )
                ],
            }
        )
        return partner.id, plan.id, rule.id

    def _remove_data(self, env, partner_id, plan_id, rule_id):
        env["mail.activity"].search(
            [("res_model", "=", "res.partner"), ("res_id", "=", partner_id)]
        ).unlink()
        env["partner.followup.rule"].browse(rule_id).unlink()  # its log cascades
        env["mail.activity.plan"].browse(plan_id).unlink()
        env["mail.message"].search(
            [("model", "=", "res.partner"), ("res_id", "=", partner_id)]
        ).unlink()
        env["res.partner"].browse(partner_id).unlink()

    def _run_in(self, cr, partner_id, rule_id):
        cr.execute("SET LOCAL lock_timeout = '30s'")
        env = api.Environment(cr, SUPERUSER_ID, {})
        rule = env["partner.followup.rule"].browse(rule_id)
        return env["partner.followup.engine"]._run(
            rules=rule, partner_range=(partner_id, partner_id)
        )

    @freeze_time("2026-12-01 10:00:00")
    def test_two_cursors_at_once_fire_the_step_once(self):
        partner_id, plan_id, rule_id = self._committed(self._create_data)
        try:
            with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
                # Both transactions see the data before either writes.
                for cr in (cr1, cr2):
                    cr.execute("SELECT count(*) FROM partner_followup_log")
                first = self._run_in(cr1, partner_id, rule_id)
                cr1.commit()  # pylint: disable=invalid-commit
                try:
                    with mute_logger("odoo.sql_db"):
                        second = self._run_in(cr2, partner_id, rule_id)
                    cr2.commit()  # pylint: disable=invalid-commit
                except psycopg2.errors.SerializationFailure:
                    # The second server's transaction is refused; the cron
                    # tries again later and finds the step logged.
                    cr2.rollback()
                    second = Counter()
            self.assertEqual(first, Counter(done=1))
            self.assertFalse(second.get("done"))

            def check(env):
                logs = env["partner.followup.log"].search([("rule_id", "=", rule_id)])
                activities = env["mail.activity"].search(
                    [("res_model", "=", "res.partner"), ("res_id", "=", partner_id)]
                )
                again = self._run_in(env.cr, partner_id, rule_id)
                return len(logs), len(activities), again

            self.assertEqual(self._committed(check), (1, 1, Counter()))
        finally:
            self._committed(
                lambda env: self._remove_data(env, partner_id, plan_id, rule_id)
            )
