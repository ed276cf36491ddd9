# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date, datetime

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import Form, tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralRouting(ReferralCommon):
    def test_referral_named_by_sequence(self):
        referral = self._refer()
        self.assertRegex(referral.name, r"^REF/\d{4}/\d{5}$")
        self.assertNotEqual(
            self._refer(referee_company_name="Other").name, referral.name
        )

    def test_routed_to_sponsor_salesperson(self):
        referral = self.Referral.with_user(self.salesman_2).create(
            {
                "sponsor_id": self.sponsor_contact.id,
                "referee_company_name": "Routed Ltd",
            }
        )
        referral = referral.sudo()
        self.assertEqual(referral.user_id, self.salesman)
        self.assertEqual(referral.referee_id.user_id, self.salesman)
        self.assertEqual(referral.source, "backend")
        self.assertEqual(referral.program_id, self.program)

    def test_routing_tracked_and_followed(self):
        """An existing company routed by a referral, with its contact
        person: the new salesperson shows in their chatter as a tracked
        change and follows the company; a contact person with its own
        salesperson keeps it; the referral is the company's channel."""
        prospect = self._create_customer("Untracked Prospect")
        person = self.env["res.partner"].create(
            {"name": "Pat Untracked", "parent_id": prospect.id}
        )
        managed = self.env["res.partner"].create(
            {
                "name": "Max Managed",
                "parent_id": prospect.id,
                "user_id": self.salesman_2.id,
            }
        )
        self.env.flush_all()
        self.env.cr.precommit.run()
        self._refer(referee_id=prospect.id)
        self.env.flush_all()
        self.env.cr.precommit.run()
        self.assertEqual((prospect | person).user_id, self.salesman)
        self.assertEqual(managed.user_id, self.salesman_2)
        for partner in prospect | person:
            tracked = partner.message_ids.tracking_value_ids.filtered(
                lambda t: t.field_id.name == "user_id"
            )
            self.assertEqual(len(tracked), 1, partner.name)
            self.assertFalse(tracked.old_value_integer)
            self.assertEqual(tracked.new_value_integer, self.salesman.id)
        self.assertFalse(
            managed.message_ids.tracking_value_ids.filtered(
                lambda t: t.field_id.name == "user_id"
            )
        )
        self.assertIn(self.salesman.partner_id, prospect.message_partner_ids)
        self.assertEqual(
            prospect.first_contact_source_id,
            self.env.ref("sale_referral_lifecycle.utm_source_referral"),
        )

    def test_new_referee_born_with_salesperson(self):
        """A company created from a referral's raw details, with its
        contact person: both have the sponsor's salesperson, who follows
        the company, without a tracked change (they were created with it)."""
        referral = self._refer(
            referee_company_name="Fresh Routed Ltd",
            referee_contact_name="Fay Fresh",
        )
        self.env.flush_all()
        self.env.cr.precommit.run()
        company = referral.referee_id
        self.assertEqual(company.child_ids.name, "Fay Fresh")
        for partner in company | company.child_ids:
            self.assertEqual(partner.user_id, self.salesman)
            self.assertFalse(
                partner.message_ids.tracking_value_ids.filtered(
                    lambda t: t.field_id.name == "user_id"
                ),
                partner.name,
            )
        self.assertIn(self.salesman.partner_id, company.message_partner_ids)

    def test_referee_keeps_its_own_salesperson(self):
        prospect = self._create_customer("Managed Prospect", user_id=self.salesman_2.id)
        referral = self._refer(referee_id=prospect.id)
        self.assertEqual(referral.user_id, self.salesman)
        self.assertEqual(prospect.user_id, self.salesman_2)

    @freeze_time("2026-11-20 10:00:00")  # a Friday
    def test_two_calls_scheduled_on_next_working_days(self):
        referral = self._refer()
        activities = referral.activity_ids.sorted("date_deadline")
        self.assertRecordValues(
            activities,
            [
                {
                    "summary": "Call the sponsor",
                    "user_id": self.salesman.id,
                    "date_deadline": date(2026, 11, 23),
                    "activity_type_id": self.env.ref(
                        "sale_referral_lifecycle.mail_activity_type_referral_call_sponsor"
                    ).id,
                },
                {
                    "summary": "Call the prospect",
                    "user_id": self.salesman.id,
                    "date_deadline": date(2026, 11, 24),
                    "activity_type_id": self.env.ref(
                        "sale_referral_lifecycle.mail_activity_type_referral_call_prospect"
                    ).id,
                },
            ],
        )

    @freeze_time("2026-11-20 10:00:00")
    def test_calls_skip_company_public_holidays(self):
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Public holiday",
                "calendar_id": self.company.resource_calendar_id.id,
                "date_from": datetime(2026, 11, 22, 23, 0),
                "date_to": datetime(2026, 11, 23, 22, 59),
            }
        )
        referral = self._refer()
        self.assertEqual(
            sorted(referral.activity_ids.mapped("date_deadline")),
            [date(2026, 11, 24), date(2026, 11, 25)],
        )

    def test_program_without_plan_schedules_nothing(self):
        self.program.activity_plan_id = False
        referral = self._refer()
        self.assertFalse(referral.activity_ids)

    def test_plan_template_sponsor_salesperson_on_contact(self):
        plan = self.env["mail.activity.plan"].create(
            {
                "name": "Thank the sponsor",
                "res_model": "res.partner",
                "template_ids": [
                    (
                        0,
                        0,
                        {
                            "activity_type_id": self.env.ref(
                                "mail.mail_activity_data_todo"
                            ).id,
                            "summary": "Thank you note",
                            "responsible_type": "sponsor_salesperson",
                        },
                    )
                ],
            }
        )
        referee = self._refer().referee_id
        referee.user_id = self.salesman_2
        wizard = (
            self.env["mail.activity.schedule"]
            .with_context(active_model="res.partner", active_ids=referee.ids)
            .create({"plan_id": plan.id})
        )
        wizard.action_schedule_plan()
        self.assertEqual(referee.activity_ids.user_id, self.salesman)

    def test_new_company_gets_default_program(self):
        company = self.env["res.company"].create({"name": "Brand New Co"})
        program = self.env["referral.program"].search([("company_id", "=", company.id)])
        self.assertEqual(len(program), 1)
        self.assertEqual(
            program.activity_plan_id,
            self.env.ref("sale_referral_lifecycle.mail_activity_plan_referral"),
        )

    def test_refer_a_company_wizard_from_contact(self):
        action = self.sponsor_contact.with_user(self.salesman).action_refer_company()
        wizard_form = Form(
            self.env["referral.create.wizard"]
            .with_user(self.salesman)
            .with_context(**action["context"])
        )
        self.assertEqual(wizard_form.user_id, self.salesman)
        wizard_form.referee_company_name = "Wizard Prospect"
        wizard_form.referee_email = "hello@wizard.example.com"
        result = wizard_form.save().action_create()
        referral = self.Referral.browse(result["res_id"])
        self.assertRecordValues(
            referral,
            [
                {
                    "sponsor_id": self.sponsor.id,
                    "user_id": self.salesman.id,
                    "source": "backend",
                    "state": "new",
                }
            ],
        )
        self.assertEqual(referral.referee_id.name, "Wizard Prospect")
        self.assertEqual(len(referral.activity_ids), 2)
        self.assertEqual(self.sponsor.referral_count, 1)
        self.assertEqual(self.sponsor_contact.referral_count, 1)

    @freeze_time("2026-11-20 18:00:00")  # Friday, 10:00 in Los Angeles
    def test_calls_counted_in_the_calendar_timezone(self):
        self.company.resource_calendar_id.tz = "America/Los_Angeles"
        referral = self._refer()
        self.assertEqual(
            sorted(referral.activity_ids.mapped("date_deadline")),
            [date(2026, 11, 23), date(2026, 11, 24)],
        )

    def test_refer_a_company_from_the_actions_menu(self):
        wizard = (
            self.env["referral.create.wizard"]
            .with_user(self.salesman)
            .with_context(active_model="res.partner", active_id=self.sponsor_contact.id)
            .create({"referee_company_name": "Menu Prospect"})
        )
        self.assertEqual(wizard.sponsor_id, self.sponsor)
        referral = self.Referral.browse(wizard.action_create()["res_id"])
        self.assertEqual(referral.referee_id.name, "Menu Prospect")

    def test_contact_person_of_new_referee_gets_the_salesperson(self):
        referral = self._refer(
            referee_company_name="Staffed Ltd", referee_contact_name="Stan Staff"
        )
        self.assertEqual(referral.referee_id.child_ids.user_id, self.salesman)

    def test_company_without_program_gets_a_clear_error(self):
        self.program.active = False
        with self.assertRefused(UserError, "no active referral program"):
            self._refer()
