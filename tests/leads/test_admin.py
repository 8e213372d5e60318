"""Admin screens for marketers and managers: pages load, stage actions go through the lifecycle
and refuse per lead, the audit trail is view-only."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse

from leads import lifecycle
from leads.models import Stage, StageTransition
from tests.factories import EventFactory, LeadFactory, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:leads_lead_changelist")


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def run_action(client, action: str, leads, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [lead.pk for lead in leads], **extra}
    return client.post(CHANGELIST, data, follow="apply" in extra)


@pytest.mark.parametrize("who", ["marketer", "manager"])
def test_lead_admin_pages_load_for_marketer_and_manager(request, client, team, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    lead = LeadFactory(company="Globex Ltd")
    EventFactory(lead=lead)
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM)
    assert client.get(reverse("admin:index")).status_code == 200
    listing = client.get(CHANGELIST, {"stage": "mql", "q": "Globex"})
    assert listing.status_code == 200
    assert "Globex Ltd" in listing.content.decode()
    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "stage history" in body.lower() and "page_view" in body
    for name in ("team", "event", "touch", "stagetransition"):
        assert client.get(reverse(f"admin:leads_{name}_changelist")).status_code == 200


def test_stage_and_scores_are_not_editable_in_the_lead_form(client, manager):
    client.force_login(manager)
    lead = LeadFactory()
    form = client.get(reverse("admin:leads_lead_change", args=[lead.pk])).context["adminform"].form
    for name in ("stage", "fit_score", "behavior_score", "owner", "sla_due_at"):
        assert name not in form.fields
    assert "company" in form.fields


def test_marketer_is_offered_manual_promotion_but_not_override(client, marketer):
    client.force_login(marketer)
    choices = [name for name, _ in client.get(CHANGELIST).context["action_form"].fields["action"].choices]
    assert "promote_to_mql" in choices
    assert "override_stage" not in choices and "reassign_round_robin" not in choices


def test_manual_promotion_asks_for_a_note_first(client, team, marketer):
    client.force_login(marketer)
    lead = LeadFactory(country="US")
    page = run_action(client, "promote_to_mql", [lead])
    assert page.status_code == 200
    assert "admin/leads/lead/action_note.html" in [t.name for t in page.templates]
    lead.refresh_from_db()
    assert lead.stage == Stage.LEAD


def test_manual_promotion_without_a_note_shows_the_form_again(client, team, marketer):
    client.force_login(marketer)
    lead = LeadFactory(country="US")
    page = run_action(client, "promote_to_mql", [lead], apply="1", note="")
    assert page.status_code == 200
    assert page.context["form"].errors["note"]
    lead.refresh_from_db()
    assert lead.stage == Stage.LEAD


def test_manual_promotion_with_a_note_promotes_and_records_it(client, team, marketer):
    client.force_login(marketer)
    lead = LeadFactory(country="US")
    page = run_action(client, "promote_to_mql", [lead], apply="1", note="Asked for a call at the booth")
    assert page.status_code == 200
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL and lead.owner is not None
    row = StageTransition.objects.get(lead=lead)
    assert (row.reason, row.note, row.actor) == ("manual", "Asked for a call at the booth", marketer)
    assert "Promoted 1 lead." in messages_of(page)


def test_promotion_refused_for_one_lead_is_reported_and_the_others_still_move(client, team, marketer):
    client.force_login(marketer)
    fresh = LeadFactory(country="US")
    closed = LeadFactory(stage=Stage.WON, email="won@example.com")
    page = run_action(client, "promote_to_mql", [fresh, closed], apply="1", note="Event follow-up")
    assert page.status_code == 200
    fresh.refresh_from_db()
    closed.refresh_from_db()
    assert fresh.stage == Stage.MQL and closed.stage == Stage.WON
    texts = messages_of(page)
    assert any("won@example.com" in text and "stage 'won'" in text for text in texts)
    assert "Promoted 1 lead." in texts


def test_manager_reopens_a_lost_lead_with_a_note(client, team, manager):
    client.force_login(manager)
    lead = LeadFactory(stage=Stage.LOST)
    page = run_action(
        client, "override_stage", [lead], apply="1", to_stage=Stage.SQL, note="Deal revived after budget freeze ended"
    )
    assert page.status_code == 200
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL
    row = StageTransition.objects.get(lead=lead)
    assert (row.from_stage, row.to_stage, row.actor) == (Stage.LOST, Stage.SQL, manager)


def test_marketer_cannot_run_the_override_action(client, team, marketer):
    client.force_login(marketer)
    lead = LeadFactory(stage=Stage.LOST)
    run_action(client, "override_stage", [lead], apply="1", to_stage=Stage.SQL, note="please")
    lead.refresh_from_db()
    assert lead.stage == Stage.LOST
    assert not StageTransition.objects.filter(lead=lead).exists()


def test_manager_reassigns_an_mql_round_robin_to_another_rep(client, team, manager, rep, rep2):
    client.force_login(manager)
    lead = LeadFactory(stage=Stage.MQL, team=team, owner=rep)
    page = run_action(client, "reassign_round_robin", [lead])
    assert page.status_code == 302
    lead.refresh_from_db()
    assert lead.owner == rep2 and lead.stage == Stage.MQL
    assert StageTransition.objects.get(lead=lead).assignment["previous_owner"] == rep.username


def test_reassigning_a_closed_lead_is_refused_with_a_message(client, team, manager):
    client.force_login(manager)
    lead = LeadFactory(stage=Stage.WON, email="closed@example.com")
    page = client.post(CHANGELIST, {"action": "reassign_round_robin", ACTION_CHECKBOX_NAME: [lead.pk]}, follow=True)
    assert page.status_code == 200
    assert any("closed@example.com" in text for text in messages_of(page))


def test_audit_trail_cannot_be_added_changed_or_deleted_in_the_admin(client, team):
    admin_user = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    row = lifecycle.promote_to_mql(LeadFactory(), actor=lifecycle.SYSTEM)
    assert client.get(reverse("admin:leads_stagetransition_add")).status_code == 403
    assert client.get(reverse("admin:leads_stagetransition_delete", args=[row.pk])).status_code == 403
    view = client.get(reverse("admin:leads_stagetransition_change", args=[row.pk]))
    assert view.status_code == 200 and "Save" not in view.content.decode().split("submit-row")[-1][:200]
    changed = client.post(reverse("admin:leads_stagetransition_change", args=[row.pk]), {"reason": "x"})
    assert changed.status_code == 403
    assert StageTransition.objects.get(pk=row.pk).reason == "score"


def test_manager_marks_a_rep_away_on_the_team_page(client, team, manager, rep, rep2):
    client.force_login(manager)
    url = reverse("admin:leads_team_change", args=[team.pk])
    assert client.get(url).status_code == 200
    memberships = list(team.memberships.order_by("id"))
    data = {
        "name": team.name,
        "territories": '["US", "CA"]',
        "is_fallback": "on",
        "manager": manager.pk,
        "memberships-TOTAL_FORMS": len(memberships),
        "memberships-INITIAL_FORMS": len(memberships),
        "memberships-MIN_NUM_FORMS": 0,
        "memberships-MAX_NUM_FORMS": 1000,
    }
    for i, membership in enumerate(memberships):
        data |= {
            f"memberships-{i}-id": membership.pk,
            f"memberships-{i}-team": team.pk,
            f"memberships-{i}-user": membership.user_id,
        }
        if membership.user == rep:
            data[f"memberships-{i}-is_away"] = "on"
    saved = client.post(url, data)
    assert saved.status_code == 302, saved.context and saved.context["errors"]
    assert team.memberships.get(user=rep).is_away is True
    assert team.memberships.get(user=rep2).is_away is False
