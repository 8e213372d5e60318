"""An edit and an activation of one signed draft at once (PostgreSQL row locks): activation
waits for the edit's lock and then sees the edited content, whose signatures are void."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from scoring import definitions, services
from scoring.models import DefinitionState, QualifiedLeadDefinition

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_activation_waiting_on_an_edit_sees_the_edit_and_refuses(marketer, manager, spec_definition):
    draft = definitions.create_definition(spec_definition, user=marketer)
    definitions.sign_definition(draft, user=marketer)
    definitions.sign_definition(draft, user=manager)
    outcome: list[object] = []

    def activate() -> None:
        try:
            services.activate_definition(QualifiedLeadDefinition.objects.get(pk=draft.pk), user=manager, rescore="no")
            outcome.append("activated")
        except definitions.DefinitionError as exc:
            outcome.append(exc.code)
        finally:
            connection.close()

    activator = threading.Thread(target=activate)
    with transaction.atomic():
        # The edit holds the row lock (as update_definition takes it) while activation starts.
        QualifiedLeadDefinition.objects.select_for_update().get(pk=draft.pk)
        activator.start()
        for _ in range(500):  # until the activation is queued behind the lock (at most ~5 s)
            if _waiting_on_a_lock():
                break
            time.sleep(0.01)
        definitions.update_definition(draft, {"fit_threshold": 5}, user=marketer)
    activator.join(timeout=30)

    assert outcome == ["signoff_missing"]
    draft.refresh_from_db()
    assert draft.state == DefinitionState.DRAFT and draft.fit_threshold == 5
