"""Who holds a commune's cameras at a given instant (REGULATION.md R27): the municipal police during
their weekly hours (wall-clock times in the commune's time zone, Europe/Paris), the national police
outside them; dated exceptions override the week; a supervisor's manual switch overrides both until
its end, or until the next scheduled switch. Pure: instants in, holder out.

Wall-clock hours across daylight-saving changes: on the last Sunday of March 02:00–03:00 does not
exist, so a "20:00–08:00" night is one hour shorter; on the last Sunday of October 02:00–03:00
happens twice and the night is one hour longer. Comparing wall-clock times of the instant, as here,
gives exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from vigie.plumbing.refusals import Refusal
from vigie.records.legal_time import DEFAULT_TIME_ZONE

from services.viewer_gateway.policy import Holder

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HoursError(Refusal):

    domain = "hours"
    pass


def _clock(text: str) -> time:
    if text == "24:00":
        return time.max
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise HoursError(f"{text!r} is not a time of day (HH:MM)",
                         code="hours.time", text=text) from None


@dataclass(frozen=True)
class WeeklyHours:
    """Per weekday, intervals [start, end) of municipal-police hours; an end before its start
    runs past midnight into the next day."""

    days: dict[str, tuple[tuple[time, time], ...]]

    @classmethod
    def parse(cls, document: dict[str, Any]) -> WeeklyHours:
        unknown = set(document) - set(DAYS)
        if unknown:
            raise HoursError(f"unknown days {sorted(unknown)}: use {', '.join(DAYS)}",
                             code="hours.days", days=", ".join(sorted(unknown)))
        days: dict[str, tuple[tuple[time, time], ...]] = {}
        for day, intervals in document.items():
            if not isinstance(intervals, list):
                raise HoursError(f"{day}: a list of [start, end] pairs",
                                 code="hours.pairs", day=day)
            parsed = []
            for pair in intervals:
                if not (isinstance(pair, list | tuple) and len(pair) == 2
                        and all(isinstance(p, str) for p in pair)):
                    raise HoursError(f"{day}: each interval is [\"HH:MM\", \"HH:MM\"]",
                                     code="hours.interval", day=day)
                start, end = _clock(pair[0]), _clock(pair[1])
                if start == end:
                    raise HoursError(f"{day}: an interval of no length ({pair[0]}–{pair[1]})",
                                     code="hours.empty_interval", day=day)
                parsed.append((start, end))
            days[day] = tuple(parsed)
        return cls(days)

    def municipal_at(self, local: datetime) -> bool:
        wall = local.time()
        today = DAYS[local.weekday()]
        yesterday = DAYS[(local.weekday() - 1) % 7]
        for start, end in self.days.get(today, ()):
            if (start < end and start <= wall < end) or (end < start and wall >= start):
                return True
        # An interval of yesterday that ran past midnight.
        return any(end < start and wall < end for start, end in self.days.get(yesterday, ()))


@dataclass(frozen=True)
class DatedException:
    starts_at: datetime
    ends_at: datetime
    holder: Holder


@dataclass(frozen=True)
class ManualSwitch:
    holder: Holder
    started_at: datetime
    until: datetime | None  # None: until the next scheduled switch
    reason: str
    switched_by: str


@dataclass(frozen=True)
class HandoverState:
    holder: Holder
    by: str  # "schedule", "exception" or "manual"
    until: datetime | None  # the next change known now
    reason: str = ""


@dataclass(frozen=True)
class Schedule:
    hours: WeeklyHours
    exceptions: tuple[DatedException, ...] = ()
    time_zone: str = DEFAULT_TIME_ZONE

    def scheduled(self, at: datetime) -> tuple[Holder, str]:
        for exc in self.exceptions:
            if exc.starts_at <= at < exc.ends_at:
                return exc.holder, "exception"
        local = at.astimezone(ZoneInfo(self.time_zone))
        return ("municipal_police" if self.hours.municipal_at(local) else "national_police",
                "schedule")

    def next_switch(self, after: datetime, horizon: timedelta = timedelta(days=8)) -> datetime | None:
        """The first instant after `after` where the scheduled holder changes (minute resolution,
        over candidate boundaries only: interval edges in local time and exception edges)."""
        current = self.scheduled(after)[0]
        for candidate in self._boundaries(after, after + horizon):
            if self.scheduled(candidate)[0] != current:
                return candidate
        return None

    def _boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        zone = ZoneInfo(self.time_zone)
        out = {e for exc in self.exceptions for e in (exc.starts_at, exc.ends_at) if start < e <= end}
        day = start.astimezone(zone).date() - timedelta(days=1)
        while day <= end.astimezone(zone).date() + timedelta(days=1):
            for start_t, end_t in self.hours.days.get(DAYS[day.weekday()], ()):
                for edge_day, edge in ((day, start_t), (day + timedelta(days=int(end_t <= start_t)),
                                                         end_t)):
                    if edge == time.max:
                        moment = datetime.combine(edge_day + timedelta(days=1), time(0), zone)
                    else:
                        moment = datetime.combine(edge_day, edge, zone)
                    moment = moment.astimezone(UTC)
                    if start < moment <= end:
                        out.add(moment)
            day += timedelta(days=1)
        # A wall-clock edge inside the spring gap (02:30, say) is passed when the clock jumps.
        out.update(t for t in _offset_changes(start, end, zone))
        return sorted(out)

    def state(self, at: datetime, manual: ManualSwitch | None = None) -> HandoverState:
        if manual is not None:
            until = manual.until or self.next_switch(manual.started_at)
            if manual.started_at <= at and (until is None or at < until):
                return HandoverState(manual.holder, "manual", until, manual.reason)
        holder, by = self.scheduled(at)
        return HandoverState(holder, by, self.next_switch(at))


def _offset_changes(start: datetime, end: datetime, zone: ZoneInfo) -> list[datetime]:
    """Instants (to the minute) where the zone's UTC offset changes within [start, end]."""
    changes = []
    t = start
    while t < end:
        nxt = min(t + timedelta(hours=1), end)
        if t.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            lo, hi = t, nxt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset():
                    lo = mid
                else:
                    hi = mid
            changes.append(hi.replace(second=0, microsecond=0))
        t = nxt
    return changes
