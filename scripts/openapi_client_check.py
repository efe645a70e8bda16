"""Drives a running NeuronX through the Python client generated from its own `/openapi.json`
(openapi-python-client; see scripts/openapi.sh): create, read, pause, timeline, and two
refusals. Every answer is parsed by the generated models, so a field the document gets wrong
(a missing property, a wrong type, an enum value it does not list) fails here.

Usage: openapi_client_check.py BASE_URL API_KEY (the generated package `neuronx_client` must
be importable).
"""

import sys
import uuid
from http import HTTPStatus

from neuronx_client import AuthenticatedClient
from neuronx_client.api.operator_actions import pause_opportunity
from neuronx_client.api.opportunities import (
    create_opportunity,
    get_opportunity,
    get_opportunity_timeline,
    list_opportunities,
)
from neuronx_client.models import (
    CommandRequest,
    ConsentRequest,
    ContactRequest,
    CreateRequest,
    ErrorBody,
    ErrorCode,
    OpportunityPage,
    OpportunityView,
    Stage,
    TimelinePage,
)


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"openapi client check failed: {what}")


def main(base_url: str, key: str) -> None:
    client = AuthenticatedClient(base_url=base_url, token=key, raise_on_unexpected_status=True)
    external_id = f"client-check-{uuid.uuid4()}"
    new = CreateRequest(
        external_id=external_id,
        # No consent: the lead is never called or texted, so the check needs no carrier.
        contact=ContactRequest(
            name="Ada Client",
            phone="+1 (415) 555-2671",
            consent=ConsentRequest(voice=False, sms=False),
            timezone="America/Los_Angeles",
        ),
    )

    created = create_opportunity.sync_detailed(client=client, body=new)
    check(created.status_code == HTTPStatus.CREATED, f"create answered {created.status_code}")
    opp = created.parsed
    check(isinstance(opp, OpportunityView), f"create parsed as {type(opp).__name__}")
    check(opp.external_id == external_id, "create echoes external_id")
    check(opp.stage is not None and isinstance(opp.stage, Stage), "stage is the Stage enum")
    check(opp.contact.phone == "+14155552671", f"phone stored E.164: {opp.contact.phone}")
    check(opp.paused is False, "a new opportunity runs")

    again = create_opportunity.sync_detailed(client=client, body=new)
    check(again.status_code == HTTPStatus.OK, f"a repeated create answered {again.status_code}")
    check(again.parsed.id == opp.id, "a repeated create answers the same opportunity")

    read = get_opportunity.sync_detailed(client=client, id=str(opp.id))
    check(read.status_code == HTTPStatus.OK, f"get answered {read.status_code}")
    check(read.parsed.id == opp.id and read.parsed.version >= opp.version, "get reads it back")

    paused = pause_opportunity.sync_detailed(
        client=client, id=str(opp.id), body=CommandRequest(reason="client check")
    )
    check(paused.status_code == HTTPStatus.OK, f"pause answered {paused.status_code}")
    check(isinstance(paused.parsed, OpportunityView), "pause answers the opportunity")
    check(paused.parsed.paused is True, "the opportunity is paused")
    check(paused.parsed.version > opp.version, "pausing bumped the version")

    # A refusal is an ErrorBody whose code is one of the documented ErrorCode values.
    twice = pause_opportunity.sync_detailed(client=client, id=str(opp.id), body=CommandRequest())
    check(twice.status_code == HTTPStatus.CONFLICT, f"pausing twice answered {twice.status_code}")
    check(isinstance(twice.parsed, ErrorBody), "a refusal parses as ErrorBody")
    check(twice.parsed.error == ErrorCode.ALREADY_PAUSED, f"refusal code {twice.parsed.error}")

    timeline = get_opportunity_timeline.sync_detailed(client=client, id=str(opp.id))
    check(timeline.status_code == HTTPStatus.OK, f"timeline answered {timeline.status_code}")
    page = timeline.parsed
    check(isinstance(page, TimelinePage), f"timeline parsed as {type(page).__name__}")
    kinds = [item.kind for item in page.items]
    check(kinds[:1] == ["created"], f"the timeline starts with created: {kinds}")
    check("paused" in kinds, f"the timeline records the pause: {kinds}")
    pause = next(item for item in page.items if item.kind == "paused")
    check("client check" in pause.reason, f"the pause keeps its reason: {pause.reason!r}")

    listed = list_opportunities.sync_detailed(client=client, paused=True, limit=500)
    check(listed.status_code == HTTPStatus.OK, f"list answered {listed.status_code}")
    check(isinstance(listed.parsed, OpportunityPage), "list parses as OpportunityPage")
    check(any(o.id == opp.id for o in listed.parsed.items), "the paused list holds it")
    check(all(o.paused for o in listed.parsed.items), "paused=true lists only paused ones")

    # Typed query parameters still reach the server's own check: a JSON 400 naming the field.
    bad = list_opportunities.sync_detailed(client=client, limit=0)
    check(bad.status_code == HTTPStatus.BAD_REQUEST, f"limit=0 answered {bad.status_code}")
    check(isinstance(bad.parsed, ErrorBody), "a 400 parses as ErrorBody")
    check(bad.parsed.error == ErrorCode.INVALID_REQUEST, f"400 code {bad.parsed.error}")
    check(bad.parsed.field == "limit", f"the 400 names limit: {bad.parsed.field}")

    print("openapi client check: create, get, pause, timeline, list and refusals as documented")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
