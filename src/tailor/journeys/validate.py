"""Save-time checks of a journey: the step graph, the segments and templates it names, template variables.

Every problem is collected, each with its path, and reported together with the problems of the
definition's shape: an unknown step reference, an unreachable step, a cycle a person could go
round without waiting, an unknown segment, an unknown template or one of the wrong channel, and
every variable a template reads that neither the profile, nor the triggering event, nor the
step's offer or data provides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import meta

from tailor.channels.templates import TemplateDefinition, _declared, _env, _paths
from tailor.journeys.definitions import JourneyDefinition, Step, read_journey
from tailor.journeys.exceptions import InvalidJourney
from tailor.profiles.exceptions import Problem

PROFILE_FIELDS = ("first_name", "last_name", "email", "phone", "user_id", "city", "country", "timezone")
"""The profile fields a message's data always holds (empty when the person has none)."""
OFFER_FIELDS = ("code", "title", "discount_percent", "expires_at", "url")
BUILT_IN = ("message_id", "unsubscribe_url", "campaign_name", "journey_name")


@dataclass(frozen=True)
class Catalogue:
    """What a journey may name: the saved segments and templates (name -> definition)."""

    segments: frozenset[str] = frozenset()
    templates: Mapping[str, TemplateDefinition] = field(default_factory=dict)


def provided_fields(journey: JourneyDefinition, step: Step) -> dict[str, str]:
    """The data paths a send or webhook step's message holds, as a template schema."""
    fields = {f"profile.{f}": "profile" for f in PROFILE_FIELDS}
    fields["profile.traits.*"] = "profile"
    fields.update({b: "built in" for b in BUILT_IN})
    if journey.entry.kind == "event":
        fields.update({"event.name": "event", "event.timestamp": "event", "event.properties.*": "event"})
    if step.offer is not None:
        fields.update({f"offer.{f}": "offer" for f in OFFER_FIELDS})
    for key in step.data:
        fields[str(key)] = "step data"
        fields[f"{key}.*"] = "step data"
    return fields


def _graph_problems(journey: JourneyDefinition) -> list[Problem]:
    problems: list[Problem] = []
    index = {s.id: i for i, s in enumerate(journey.steps)}
    for i, s in enumerate(journey.steps):
        for target in s.branches():
            if target is not None and target not in index:
                problems.append(Problem(f"steps[{i}]", f"step {s.id!r} leads to unknown step {target!r}"))
    if not journey.steps:
        return problems
    reachable: set[str] = set()
    todo = [journey.steps[0].id]
    while todo:
        sid = todo.pop()
        if sid in reachable or sid not in index:
            continue
        reachable.add(sid)
        todo.extend(t for t in journey.steps[index[sid]].branches() if t is not None)
    for i, s in enumerate(journey.steps):
        if s.id not in reachable:
            problems.append(Problem(f"steps[{i}]", f"step {s.id!r} is unreachable from the first step"))
    # A cycle through steps that never wait would run forever in one go.
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(sid: str, path: list[str]) -> None:
        state[sid] = 1
        path.append(sid)
        step = journey.steps[index[sid]]
        if not step.waits:
            for t in step.branches():
                if t is None or t not in index or journey.steps[index[t]].waits:
                    continue
                if state.get(t) == 1:
                    cycle = path[path.index(t) :]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        shown = " -> ".join([*cycle, t])
                        problems.append(Problem(f"steps[{index[t]}]", f"cycle without a wait: {shown}"))
                elif state.get(t) is None:
                    visit(t, path)
        path.pop()
        state[sid] = 2

    for s in journey.steps:
        if state.get(s.id) is None and not s.waits:
            visit(s.id, [])
    return problems


def _template_problems(journey: JourneyDefinition, i: int, step: Step, catalogue: Catalogue) -> list[Problem]:
    kind = "send" if step.kind == "send" else "webhook"
    where = f"steps[{i}].{kind}.template"
    if step.template is None:
        return []
    template = catalogue.templates.get(step.template)
    if template is None:
        return [Problem(where, f"unknown template {step.template!r}")]
    if template.channel != step.channel:
        return [
            Problem(where, f"template {step.template!r} is a {template.channel} template, not {step.channel}")
        ]
    provided = provided_fields(journey, step)
    problems = []
    seen: set[str] = set()
    for part, source in template.parts().items():
        if not source:
            continue
        tree = _env(part).parse(source)
        free = meta.find_undeclared_variables(tree)
        for path, line in _paths(tree):
            if path.split(".")[0] not in free or path in seen or _declared(path, provided):
                continue
            seen.add(path)
            root = path.split(".")[0]
            why = {
                "event": "the journey is not entered by an event, so there is none",
                "offer": "the step carries no offer" if step.offer is None else "offers have no such field",
                "profile": "profiles provide " + ", ".join(PROFILE_FIELDS) + " and traits.*",
            }.get(root, "neither the profile, the event, the offer nor the step's data provides it")
            problems.append(
                Problem(where, f"template {step.template!r} reads {path!r} ({part}, line {line}): {why}")
            )
    return problems


def journey_problems(journey: JourneyDefinition, catalogue: Catalogue) -> list[Problem]:
    """Every problem of a readable journey that needs the graph or the data directory to find."""
    problems = _graph_problems(journey)
    segments = []
    if journey.entry.segment is not None:
        segments.append((f"entry.{journey.entry.kind}.segment", journey.entry.segment))
    segments += [("exit_on", name) for name in journey.exit_segments]
    for i, s in enumerate(journey.steps):
        if s.condition is not None and s.condition.kind == "segment":
            segments.append((f"steps[{i}].condition.if.segment", s.condition.name))
        if s.kind in ("send", "webhook"):
            problems += _template_problems(journey, i, s, catalogue)
        for offer, where in ((s.offer, "send.offer"), (s.until_offer, "wait.until_offer")):
            if offer is not None and offer not in journey.offers:
                problems.append(Problem(f"steps[{i}].{where}", f"unknown offer {offer!r}"))
        if (
            s.until_offer is not None
            and s.until_offer in journey.offers
            and journey.offers[s.until_offer].valid_for is None
        ):
            problems.append(
                Problem(
                    f"steps[{i}].wait.until_offer",
                    f"offer {s.until_offer!r} has no valid_for, so it never expires",
                )
            )
        if s.kind == "split" and not s.variants:
            problems.append(Problem(f"steps[{i}].split.variants", "needs at least one variant"))
    for where, name in segments:
        if name not in catalogue.segments:
            problems.append(Problem(where, f"unknown segment {name!r}"))
    return problems


def check_journey(body: Mapping[str, Any], catalogue: Catalogue) -> JourneyDefinition:
    """A journey read and checked; InvalidJourney lists every problem of its shape, graph and names."""
    journey, problems = read_journey(body)
    problems = problems + journey_problems(journey, catalogue)
    if problems:
        raise InvalidJourney(journey.name or None, problems)
    return journey
