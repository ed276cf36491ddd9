# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Working-day arithmetic of a company: the deadlines of activity plans
(referral calls and follow-up steps alike) and the follow-up engine's dates.

The company's working schedule (``resource.calendar``) gives its working
days, public holidays removed, in its own time zone: the intervals that
``plan_days`` walks through, read once for a window of dates instead of once
per record.
"""

from bisect import bisect_left, bisect_right
from datetime import datetime, time, timedelta

import pytz

from .local_day import company_today, company_tz_name

WINDOW_DAYS = 500


class WorkingDays:
    """Dates of a company: its local ``today`` and its working days around
    it (``window_days`` on each side; beyond, days are approximated)."""

    def __init__(self, company, now, window_days=WINDOW_DAYS):
        self.company = company
        self.calendar = company.resource_calendar_id
        self.tz_name = company_tz_name(company)
        self.tz = pytz.timezone(self.tz_name)
        self.today = company_today(company, now)
        self.window_days = window_days
        self.days = self._read_working_days() if self.calendar else None

    def _read_working_days(self):
        start = self.tz.localize(
            datetime.combine(self.today - timedelta(days=self.window_days), time.min)
        )
        stop = self.tz.localize(
            datetime.combine(self.today + timedelta(days=self.window_days), time.max)
        )
        intervals = self.calendar._work_intervals_batch(
            start, stop, compute_leaves=True
        )[False]
        return sorted(
            {begin.astimezone(self.tz).date() for begin, _end, _r in intervals}
        )

    def shift(self, day, count, working=True):
        """The date ``count`` days after ``day`` (before when negative):
        working days when ``working``, the day itself for 0."""
        if not count:
            return day
        if not working or not self.days:
            return day + timedelta(days=count)
        if count > 0:
            index = bisect_right(self.days, day) + count - 1
            if index < len(self.days):
                return self.days[index]
        else:
            index = bisect_left(self.days, day) + count
            if index >= 0:
                return self.days[index]
        # Beyond the window read: calendar days, an approximation far away.
        return day + timedelta(days=count * 7 // 5)

    def deadline(self, template):
        """Deadline of the activity plan ``template`` planned today: a delay
        in days after the plan date counts working days from today and
        falls on a working day; other delays are the template's own."""
        if template.delay_unit == "days" and template.delay_from == "after_plan_date":
            return self.first_working_day(self.shift(self.today, template.delay_count))
        return template._get_date_deadline(self.today)

    def first_working_day(self, day):
        """``day`` when it is a working day, else the next one."""
        if not self.days:
            return day
        index = bisect_left(self.days, day)
        return self.days[index] if index < len(self.days) else day

    def latest_reference(self, count, working=True):
        """The latest reference date whose step, ``count`` days after it, is
        due today or earlier."""
        if not count:
            return self.today
        span = abs(count) * 3 + 30
        if count > 0:
            candidates = (self.today - timedelta(days=n) for n in range(span))
        else:
            candidates = (self.today + timedelta(days=n) for n in range(span, -1, -1))
        for day in candidates:
            if self.shift(day, count, working) <= self.today:
                return day
        return self.today - timedelta(days=span)

    def utc_start(self, day):
        """Naive UTC datetime of the start of ``day`` where the company works:
        local dates as bounds for datetime columns."""
        return self.datetime_at(day, hour=0)

    def datetime_at(self, day, hour=6):
        """Naive UTC datetime of ``hour`` o'clock on ``day`` where the company
        works: when a step of that day is worth running the cron."""
        local = self.tz.localize(datetime.combine(day, time(hour)))
        return local.astimezone(pytz.utc).replace(tzinfo=None)
