"""Issue 24: the product in Spanish and Romanian. Pages follow the browser, then the user's own
choice (profile, else team); the picker saves it; the API's error detail follows Accept-Language
while its codes and stage/reason values never change; the OpenAPI schema stays English; report
CSV headers follow ?lang=; the catalogues are complete."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils import translation

from leadflow.catalogues import LOCALE_DIR, check_catalogue
from leads.models import Stage, UserProfile
from tests.api.conftest import client_for
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_a_browser_asking_for_spanish_gets_the_login_page_in_spanish(client):
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert '<html lang="es">' in page
    assert "Iniciar sesión" in page and "Contraseña" in page


def test_a_browser_asking_for_romanian_gets_the_admin_in_romanian(client, manager):
    client.force_login(manager)
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ro").content.decode()
    assert '<html lang="ro"' in page
    assert "Administrare" in page or "Adaugă" in page


def test_the_users_own_language_wins_over_the_browsers(client, rep, team):
    UserProfile.objects.create(user=rep, language="ro")
    client.force_login(rep)
    page = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert '<html lang="ro">' in page and "Deconectare" in page


def test_the_teams_language_applies_to_a_member_without_their_own(client, rep, team):
    team.language = "es"
    team.save(update_fields=["language"])
    client.force_login(rep)
    page = client.get("/inbox/").content.decode()
    assert "Bandeja de entrada" in page and "Cerrar sesión" in page


def test_the_picker_saves_the_choice_on_the_profile_and_redirects_back(client, rep, team):
    client.force_login(rep)
    response = client.post(reverse("set_language"), {"language": "es", "next": "/inbox/"})
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    assert UserProfile.objects.get(user=rep).language == "es"
    assert "Bandeja de entrada" in client.get("/inbox/").content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/inbox/"})
    assert "Inbox" in client.get("/inbox/").content.decode()


def test_language_is_read_at_login_from_the_profile(client, rep, team):
    UserProfile.objects.create(user=rep, language="ro", time_zone="Europe/Bucharest")
    assert client.login(username="rep1", password="pw")
    assert client.session["leadflow_locale"][:3] == ["ro", "Europe/Bucharest", True]


def test_a_language_set_in_the_admin_reaches_a_signed_in_user_within_minutes(client, rep, team):
    from leads import i18n

    client.force_login(rep)
    assert "Inbox" in client.get("/inbox/").content.decode()
    UserProfile.objects.create(user=rep, language="es")
    session = client.session
    session[i18n.SESSION_KEY][3] -= i18n.SESSION_MAX_AGE  # as if five minutes had passed
    session.save()
    assert "Bandeja de entrada" in client.get("/inbox/").content.decode()


def test_the_page_has_a_language_picker_and_no_inline_script(client, rep, team):
    client.force_login(rep)
    page = client.get("/inbox/").content.decode()
    assert 'action="/i18n/setlang/"' in page and '<option value="ro" lang="ro">Română</option>' in page
    assert "<script>" not in page  # the words for the script travel as JSON, not as code


def test_lead_page_shows_dates_and_numbers_the_romanian_way(client, rep, team):
    UserProfile.objects.create(user=rep, language="ro")
    lead = LeadFactory(stage=Stage.SAL, owner=rep, team=team, annual_revenue=1234567, employees=2500)
    client.force_login(rep)
    page = client.get(f"/leads/{lead.pk}/").content.decode()
    assert "Cifră de afaceri" in page and "1.234.567" in page and "2.500" in page


@pytest.mark.parametrize(
    ("language", "detail"),
    [
        ("es", "No se puede aceptar el lead"),
        ("ro", "Nu se poate accepta leadul"),
        ("en", "Cannot accept lead"),
    ],
)
def test_api_error_detail_follows_accept_language_while_the_code_and_stage_stay(rep, team, language, detail):
    lead = LeadFactory(stage=Stage.SAL, owner=rep, team=team)
    response = client_for(rep).post(
        f"/api/v1/leads/{lead.pk}/accept/", {}, format="json", HTTP_ACCEPT_LANGUAGE=language
    )
    body = response.json()
    assert response.status_code == 409
    assert body["code"] == "invalid_transition" and body["current_stage"] == "sal"
    assert body["detail"].startswith(detail)


def test_api_validation_names_the_field_in_the_clients_language(rep, team):
    lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
    response = client_for(rep).post(
        f"/api/v1/leads/{lead.pk}/reject/", {"reason": "nope"}, format="json", HTTP_ACCEPT_LANGUAGE="es"
    )
    body = response.json()
    assert response.status_code == 400 and body["code"] == "validation_error"
    assert body["detail"] == "Datos no válidos: reason."
    assert "no es una elección válida" in body["fields"]["reason"][0]  # DRF's own Spanish


def test_a_lifecycle_refusal_names_the_reason_in_spanish_and_lists_the_codes_as_they_are(rep, team):
    from leads import lifecycle
    from leads.lifecycle import Actor

    lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
    with translation.override("es"), pytest.raises(lifecycle.InvalidReason) as refused:
        lifecycle.reject(lead, actor=Actor.person(rep), reason="nope")
    assert refused.value.message.startswith("Motivo de rechazo desconocido 'nope'. Elige uno de: bad_timing")
    assert "no_budget" in refused.value.details["choices"]


def test_api_stage_values_do_not_translate(rep, team):
    lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
    body = client_for(rep).get(f"/api/v1/leads/{lead.pk}/", HTTP_ACCEPT_LANGUAGE="ro").json()
    assert body["stage"] == "mql"


def test_the_openapi_schema_stays_english_whatever_the_callers_language(client, manager):
    client.force_login(manager)
    schema = client.get("/api/v1/schema/?format=json", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Lead lifecycle for CRM" in schema and "Promovido" not in schema


def test_report_csv_headers_follow_lang_and_english_keeps_the_field_names(client, manager):
    client.force_login(manager)
    url = "/api/v1/reports/funnel/?from=2026-01-01&to=2026-01-31&format=csv"
    english = next(csv.reader(io.StringIO(client.get(url).content.decode("utf-8-sig"))))
    assert english[:3] == ["group", "stage", "entered"]
    spanish = next(csv.reader(io.StringIO(client.get(url + "&lang=es").content.decode("utf-8-sig"))))
    assert spanish[:3] == ["Grupo", "Etapa", "Entradas"]
    romanian = next(csv.reader(io.StringIO(client.get(url + "&lang=ro").content.decode("utf-8-sig"))))
    assert romanian[:3] == ["Grup", "Etapă", "Intrări"]


@pytest.mark.parametrize("language", ["es", "ro"])
def test_catalogue_is_complete_with_no_fuzzy_entry(language):
    problems = check_catalogue(LOCALE_DIR / language / "LC_MESSAGES" / "django.po")
    assert not problems.untranslated and not problems.fuzzy and not problems.obsolete


def test_romanian_catalogue_has_three_plural_forms():
    from django.utils import translation
    from django.utils.translation import ngettext

    with translation.override("ro"):
        forms = [
            ngettext("%(count)s lead recycled more than once.", "%(count)s leads recycled more than once.", n)
            % {"count": n}
            for n in (1, 3, 21)
        ]
    assert forms == [
        "1 lead reciclat de mai multe ori.",
        "3 leaduri reciclate de mai multe ori.",
        "21 de leaduri reciclate de mai multe ori.",
    ]


def test_why_a_lead_is_not_an_mql_is_explained_in_the_readers_language():
    from scoring import engine
    from scoring.services import why_not_in_words

    line = engine.WHY_NOT_FIT % {"score": "42", "threshold": "60"}
    with translation.override("es"):
        assert why_not_in_words(line) == "El encaje 42 está por debajo del umbral 60."
    with translation.override("ro"):
        assert why_not_in_words(engine.WHY_NOT_KNOCKOUT % {"name": "Free mail"}) == "Excludere: Free mail."
    assert why_not_in_words("Something the engine did not say.") == "Something the engine did not say."
