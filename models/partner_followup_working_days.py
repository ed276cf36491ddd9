# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Working-day arithmetic of a company for the follow-up engine.

The company's working schedule (``resource.calendar``) gives its working
days, public holidays removed, in its own time zone: the intervals that
``plan_days`` walks through, read once for a window of dates instead of once
per record.
"""

from bisect import bisect_left, bisect_right
from datetime import datetime, time, timedelta

import pytz

WINDOW_DAYS = 500


class FollowupWorkingDays:
    """Dates of a company seen by the engine: its local ``today`` and the
    working days around it."""

    def __init__(self, company, now):
        self.company = company
        self.calendar = company.resource_calendar_id
        tz_name = self.calendar.tz or company.partner_id.tz or "UTC"
        self.tz = pytz.timezone(tz_name)
        self.tz_name = tz_name
        self.today = pytz.utc.localize(now).astimezone(self.tz).date()
        self.days = self._read_working_days() if self.calendar else None

    def _read_working_days(self):
        start = self.tz.localize(
            datetime.combine(self.today - timedelta(days=WINDOW_DAYS), time.min)
        )
        stop = self.tz.localize(
            datetime.combine(self.today + timedelta(days=WINDOW_DAYS), time.max)
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
