"""The Admin page for every role: users, settings, providers and the audit log, and their errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from core import admin, sender_verification
from core.admin import get_tenant_settings
from core.auth import authenticate
from core.db import Database
from core.leads.queries import opt_out_leads
from core.models import AuditLog, Lead, Role, Suppression, User
from core.permissions import Actor
from core.sign_in import SessionEnded, signed_in_user, start_session
from tests.factories import make_actor, make_tenant
from tests.pages.conftest import PageFactory, table

PAGE = "pages/admin.py"
# The admin page's tables by their keys.
TABLES = {"users": "admin_users", "providers": "admin_providers", "suppressions": "suppressions_table",
          "audit": "audit_table", "organisations": "organisations_table"}


@pytest.fixture
def team(db: Database) -> dict[str, Actor]:
    tenant = make_tenant(db)
    return {role.value: make_actor(db, tenant, role) for role in Role}


def _click(app: AppTest, label: str) -> AppTest:
    [button] = [b for b in app.button if b.label == label]
    return button.click().run()


def _users(app: AppTest) -> dict[str, dict[str, Any]]:
    return {r["username"]: r for r in table(app, TABLES["users"]).to_dict("records")}


def _user(db: Database, username: str) -> User:
    with db.session(system=True) as session:
        user = session.query(User).filter_by(username=username).one()
        session.expunge(user)
        return user


@pytest.mark.parametrize("role", [Role.manager, Role.analyst])
def test_managers_and_analysts_cannot_open_it(open_page: PageFactory, db: Database,
                                              team: dict[str, Actor], role: Role) -> None:
    app = open_page(PAGE, team[role.value])
    assert app.error[0].value == f"Your role ({role.value}) cannot open this page."
    assert not app.tabs and not app.text_input


@pytest.mark.parametrize(
    ("role", "grantable"),
    [
        (Role.admin, ["admin", "manager", "analyst"]),
        (Role.owner, ["owner", "admin", "manager", "analyst"]),
    ],
)
def test_admins_and_owners_see_every_section(open_page: PageFactory, db: Database,
                                             team: dict[str, Actor], role: Role,
                                             grantable: list[str]) -> None:
    app = open_page(PAGE, team[role.value])
    assert not app.exception and not app.error
    # Owners of the installation create organisations here too; admins run their own.
    assert [t.label for t in app.tabs] == ["Users", "Settings", "Providers", "API keys", "Webhooks",
                                         "Suppression list",
                                         "Audit log"] + (["Organisations"] if role is Role.owner else [])
    assert set(_users(app)) == {a.username for a in team.values()}
    assert app.selectbox(key="invite_role").options == grantable
    providers = table(app, TABLES["providers"])
    assert list(providers["status"]) == ["configured"] * 3
    assert app.text_input(key="settings_country").value == "US"
    actions = list(table(app, TABLES["audit"])["action"])
    assert actions and set(actions) == {"create"}  # the team's accounts, and nothing else yet


def test_suppression_list_add_by_hand_error_and_undo(open_page: PageFactory, db: Database,
                                                     team: dict[str, Actor]) -> None:
    app = open_page(PAGE, team["admin"])
    def address_box(app: AppTest) -> Any:
        return next(t for t in app.text_input if t.label == "Phone number or email to suppress")

    address_box(app).input("12345")
    app = _click(app, "Suppress")
    assert "12345" in app.error[0].value
    address_box(app).input("(415) 555-0100")
    app = _click(app, "Suppress")
    assert app.success[0].value == "Suppressed."
    listed = table(app, TABLES["suppressions"])
    assert list(listed["address"]) == ["+14155550100"] and list(listed["reason"]) == ["manual"]
    app = _click(app, "Remove this suppression")
    assert app.success[0].value == (
        "\\+14155550100 is no longer on the suppression list. No lead has this address.")
    assert table(app, TABLES["suppressions"]).empty


def _opted_out_lead(db: Database, tenant_id: int, admin: Actor) -> int:
    with db.session(tenant_id=tenant_id) as session, session.begin():
        lead = Lead(first_name="Ada", last_name="Lovelace", phone="+14155550100", email="ada@example.com")
        session.add(lead)
        session.flush()
        lead_id = lead.id
    opt_out_leads(db, admin, [lead_id])  # by hand: both addresses suppressed by hand too
    return lead_id


def test_removing_a_suppression_says_the_lead_stays_opted_out_and_offers_the_opt_in(
    open_page: PageFactory, db: Database, team: dict[str, Actor]
) -> None:
    admin_actor = team["admin"]
    lead_id = _opted_out_lead(db, admin_actor.tenant_id, admin_actor)
    app = open_page(PAGE, admin_actor)
    app.selectbox(key="suppressions_remove_pick").select(
        next(o for o in app.selectbox(key="suppressions_remove_pick").options if "+14155550100" in o))
    app = _click(app, "Remove this suppression")
    assert app.success[0].value == (
        "\\+14155550100 is no longer on the suppression list. Ada Lovelace, the lead with this address, "
        "is still opted out, so campaigns still leave them out: opt them back in below if they asked "
        "to hear from you again."
    )
    with db.session(tenant_id=admin_actor.tenant_id) as session:
        assert session.get(Lead, lead_id).opted_out_at is not None  # what the message says
    # The opt-in below is ready for that lead: her state, and a reason to give.
    assert app.text_input(key="suppressions_opt_in_address").value == "+14155550100"
    assert any("Ada Lovelace**: opted out since" in m.value and "ada@example.com suppressed because of "
               "an entry added by hand" in m.value for m in app.markdown)
    _click(app, "Opt back in")
    assert "give the reason" in app.error[0].value.lower()
    app.text_input(key="suppressions_opt_in_reason").input("She called to ask for the spring offer")
    app = _click(app, "Opt back in")
    assert not app.exception
    assert app.success[0].value == ("Ada Lovelace is opted back in: ada@example.com came off the "
                                    "suppression list.")
    assert app.text_input(key="suppressions_opt_in_address").value == ""
    with db.session(tenant_id=admin_actor.tenant_id) as session:
        assert session.get(Lead, lead_id).opted_out_at is None
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "leads.opt_in")).one()
    assert (entry.user_id, entry.entity_id) == (admin_actor.user_id, str(lead_id))
    assert entry.details["reason"] == "She called to ask for the spring offer"


def test_a_lead_who_replied_stop_is_not_offered_the_opt_in(
    open_page: PageFactory, db: Database, team: dict[str, Actor]
) -> None:
    admin_actor = team["admin"]
    _opted_out_lead(db, admin_actor.tenant_id, admin_actor)
    with db.session(tenant_id=admin_actor.tenant_id) as session, session.begin():
        session.execute(update(Suppression).where(Suppression.channel == "email").values(reason="stop"))
    app = open_page(PAGE, admin_actor)
    app.text_input(key="suppressions_opt_in_address").input("ADA@example.com").run()
    assert not app.exception
    assert app.warning[0].value == (
        "Ada Lovelace cannot be opted back in: ada@example.com is suppressed because of a STOP "
        "reply, which the person made themselves; only they can take it back, so it stays."
    )
    assert not [b for b in app.button if b.label == "Opt back in"]


def test_invite_shows_the_password_once(open_page: PageFactory, db: Database,
                                        team: dict[str, Actor]) -> None:
    app = open_page(PAGE, team["admin"])
    app.text_input(key="invite_username").input("new.rep")
    app.text_input(key="invite_name").input("New Rep")
    app.selectbox(key="invite_role").set_value("manager")
    _click(app, "Invite")
    assert not app.error
    assert "shown only once" in app.success[0].value
    password = app.code[0].value
    assert authenticate(db, "new.rep", password, max_failures=5, lock_minutes=1).role is Role.manager
    assert _users(app)["new.rep"]["role"] == "manager"
    app.run()  # any next interaction: the password is gone
    assert not app.code


def test_invite_errors_are_messages(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    app = open_page(PAGE, team["admin"])
    app.text_input(key="invite_username").input(team["manager"].username)
    _click(app, "Invite")
    assert "is taken" in app.error[0].value
    assert not app.code


def _pick(app: AppTest, db: Database, username: str) -> AppTest:
    app.selectbox(key="manage_user").set_value(_user(db, username).id)
    return app.run()


def test_change_role(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    app = _pick(open_page(PAGE, team["admin"]), db, team["manager"].username)
    app.selectbox(key="manage_role").set_value("analyst")
    _click(app, "Change role")
    assert app.success[0].value == f"{team['manager'].username} is now analyst."
    assert _users(app)[team["manager"].username]["role"] == "analyst"


@pytest.mark.parametrize(
    ("actor", "target", "new_role", "message"),
    [
        ("owner", "owner", "admin", "last active owner"),
        ("admin", "owner", "manager", "may not manage owners"),
    ],
)
def test_change_role_errors(open_page: PageFactory, db: Database, team: dict[str, Actor], actor: str,
                            target: str, new_role: str, message: str) -> None:
    app = _pick(open_page(PAGE, team[actor]), db, team[target].username)
    app.selectbox(key="manage_role").set_value(new_role)
    _click(app, "Change role")
    assert message in app.error[0].value
    assert _user(db, team[target].username).role == target


def test_deactivate_and_reactivate(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    analyst = team["analyst"].username
    app = _pick(open_page(PAGE, team["admin"]), db, analyst)
    _click(app, "Deactivate")
    assert app.success[0].value == f"{analyst} is deactivated."
    assert _users(app)[analyst]["state"] == "inactive"
    _click(app, "Reactivate")
    assert app.success[0].value == f"{analyst} is reactivated."
    assert _user(db, analyst).active


@pytest.mark.parametrize(
    ("actor", "target", "message"),
    [("admin", "admin", "cannot deactivate yourself"), ("admin", "owner", "may not manage owners")],
)
def test_deactivate_errors(open_page: PageFactory, db: Database, team: dict[str, Actor], actor: str,
                           target: str, message: str) -> None:
    app = _pick(open_page(PAGE, team[actor]), db, team[target].username)
    _click(app, "Deactivate")
    assert message in app.error[0].value
    assert _user(db, team[target].username).active


def test_unlock(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    manager = team["manager"].username
    with db.session(system=True) as session, session.begin():
        session.query(User).filter_by(username=manager).update(
            {"locked_until": datetime(2099, 1, 1, tzinfo=UTC), "failed_logins": 0})
    app = open_page(PAGE, team["admin"])
    assert _users(app)[manager]["state"] == "locked"
    app = _pick(app, db, manager)
    _click(app, "Unlock")
    assert app.success[0].value == f"{manager} is unlocked."
    assert _users(app)[manager]["state"] == "active"
    assert _user(db, manager).locked_until is None


def test_save_settings(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    app = open_page(PAGE, team["admin"])
    app.text_input(key="settings_country").input("gb")
    app.text_input(key="settings_start").input("09:00")
    app.checkbox(key="settings_weekdays").check()
    app.text_input(key="settings_sms_sender").input("Acme")
    app.text_area(key="settings_links").input("https://acme.example.com\nexample.org")
    app.text_input(key="settings_budget").input("1,250.50")
    _click(app, "Save settings")
    assert not app.error
    assert app.success[0].value == "Settings saved."
    saved = get_tenant_settings(db, team["admin"])
    assert (saved.default_country, saved.send_window_start, saved.weekdays_only) == ("GB", "09:00", True)
    assert saved.link_allow_list == ["acme.example.com", "example.org"]
    assert saved.monthly_budget_microusd == 1_250_500_000


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("settings_start", "9am", "is not a time of day"),
        ("settings_cap_day", "0", "The cap per lead a day must be between 1 and 1000"),
        ("settings_cap_week", "a few", "The cap per lead a week 'a few' is not a whole number"),
        ("settings_budget", "lots", "'lots' is not an amount in dollars"),
        ("settings_country", "Narnia", "Country 'Narnia'"),
        ("settings_email_sender", "nobody", "Email sender 'nobody' is not valid"),
    ],
)
def test_settings_errors_are_messages(open_page: PageFactory, db: Database, team: dict[str, Actor],
                                      key: str, value: str, message: str) -> None:
    before = get_tenant_settings(db, team["owner"])
    app = open_page(PAGE, team["owner"])
    app.text_input(key=key).input(value)
    _click(app, "Save settings")
    assert message in app.error[0].value
    assert get_tenant_settings(db, team["owner"]) == before


def test_send_rules_are_saved_and_shown_in_words(open_page: PageFactory, db: Database,
                                                 team: dict[str, Actor]) -> None:
    app = open_page(PAGE, team["admin"])
    zone = app.selectbox(key="settings_time_zone")
    assert zone.value == "" and zone.format_func(zone.value) == "America/New_York (the default for US)"
    assert app.selectbox(key="settings_holiday_country").format_func("") == "Each recipient's own country"
    zone.select("Europe/Berlin")
    app.text_input(key="settings_start").input("22:00")
    app.text_input(key="settings_end").input("06:00")
    app.text_input(key="settings_cap_day").input("1")
    app.text_input(key="settings_cap_week").input("3")
    app.checkbox(key="settings_holidays").check()
    app.selectbox(key="settings_holiday_country").select("DE")
    _click(app, "Save settings")
    assert not app.error and app.success[0].value == "Settings saved."
    saved = get_tenant_settings(db, team["admin"])
    assert saved.time_zone == "Europe/Berlin"
    assert (saved.send_window_start, saved.send_window_end) == ("22:00", "06:00")
    assert (saved.contact_cap_per_day, saved.contact_cap_per_week) == (1, 3)
    assert (saved.skip_public_holidays, saved.holiday_country) == (True, "DE")
    words = [c.value for c in app.caption]
    assert "Messages go out 22:00 to 06:00 the next day, every day, in each recipient's local time." in words
    assert ("At most 1 message per lead a day and 3 a week (all campaigns together): a lead over a cap "
            "waits until the cap allows.") in words
    assert ("Nothing goes out on public holidays (the DE calendar): sends wait for the next day the "
            "window opens.") in words
    assert "Schedules and the times the dashboard shows are in Europe/Berlin." in words
    # Opened again, the form shows what was saved.
    app = open_page(PAGE, team["admin"])
    assert app.selectbox(key="settings_time_zone").value == "Europe/Berlin"
    assert app.selectbox(key="settings_holiday_country").value == "DE"
    assert (app.text_input(key="settings_cap_day").value, app.text_input(key="settings_cap_week").value) == (
        "1", "3")


def test_no_caps_and_no_holidays_by_default_in_words(open_page: PageFactory, db: Database,
                                                     team: dict[str, Actor]) -> None:
    words = [c.value for c in open_page(PAGE, team["admin"]).caption]
    assert "Messages go out 08:00 to 21:00, every day, in each recipient's local time." in words
    assert "No cap on messages per lead." in words and "Public holidays are not skipped." in words
    assert "Schedules and the times the dashboard shows are in America/New_York." in words


def test_save_playbook(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    app = open_page(PAGE, team["admin"])
    app.text_area(key="settings_playbook_json").input(
        '{"retail": {"value_propositions": ["Fewer stock-outs"], "proof_points": ["40 shops"]}}')
    _click(app, "Save playbook")
    assert app.success[0].value == "Playbook saved."
    assert get_tenant_settings(db, team["admin"]).playbook == {
        "retail": {"value_propositions": ["Fewer stock-outs"], "proof_points": ["40 shops"]}}


def test_playbook_errors_are_messages(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    app = open_page(PAGE, team["admin"])
    app.text_area(key="settings_playbook_json").input('{"retail": ')
    _click(app, "Save playbook")
    assert "not valid JSON" in app.error[0].value
    assert get_tenant_settings(db, team["admin"]).playbook == {}


def test_save_prices_unchanged(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    app = open_page(PAGE, team["admin"])
    _click(app, "Save prices")
    assert app.success[0].value == "Price overrides saved."
    assert get_tenant_settings(db, team["admin"]).price_overrides == {}


def test_provider_status_never_shows_secrets(open_page: PageFactory, db: Database,
                                             team: dict[str, Actor],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-very-secret")
    monkeypatch.setenv("LEADFLOW_SMS_PROVIDER", "twilio")
    app = open_page(PAGE, team["owner"])
    providers = table(app, TABLES["providers"]).set_index("channel")
    assert providers.loc["LLM", "status"] == "configured"
    assert providers.loc["SMS", "status"] == "missing"
    assert "LEADFLOW_TWILIO_AUTH_TOKEN" in providers.loc["SMS", "missing settings"]
    assert "sk-live-very-secret" not in str(app._tree)


def test_audit_log_filters_and_pages(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    admin = team["admin"]
    with db.session(tenant_id=admin.tenant_id) as session, session.begin():
        for n in range(60):
            session.add(AuditLog(user_id=admin.user_id, action="export", entity="report",
                                 details={"n": n}, created_at=datetime(2026, 11, 1, tzinfo=UTC)))
    app = open_page(PAGE, admin)
    assert "64 entries · page 1 of 2" in [c.value for c in app.caption]
    app.selectbox(key="audit_action").set_value("export").run()
    assert "60 entries · page 1 of 2" in [c.value for c in app.caption]
    app.number_input(key="audit_page").set_value(2).run()
    assert len(table(app, TABLES["audit"])) == 10
    app.selectbox(key="audit_user").set_value(team["owner"].user_id).run()
    assert "0 entries · page 1 of 1" in [c.value for c in app.caption]


def test_audit_log_by_days(open_page: PageFactory, db: Database, team: dict[str, Actor]) -> None:
    admin = team["admin"]
    with db.session(tenant_id=admin.tenant_id) as session, session.begin():
        for day in (1, 2, 3):
            session.add(AuditLog(user_id=None, action="export", entity="report",
                                 created_at=datetime(2026, 10, day, 9, tzinfo=UTC)))
    app = open_page(PAGE, admin)
    app.date_input(key="audit_days").set_value((date(2026, 10, 2), date(2026, 10, 3))).run()
    assert not app.error
    assert "2 entries · page 1 of 1" in [c.value for c in app.caption]
    assert set(table(app, TABLES["audit"])["user"]) == {"system"}
    exports = [b for b in app.get("download_button") if "audit" in b.proto.id]
    assert [b.proto.label for b in exports] == ["Export CSV", "Export JSON lines"]


def test_reset_password_shows_a_one_time_password_once(open_page: PageFactory, db: Database,
                                                       team: dict[str, Actor]) -> None:
    manager = team["manager"]
    session_id = start_session(db, manager, key="k" * 32, lifetime=timedelta(days=1)).session_id
    app = _pick(open_page(PAGE, team["admin"]), db, manager.username)
    _click(app, "Reset password")
    assert not app.error
    assert "shown only once" in app.success[0].value
    temporary = app.code[0].value
    with pytest.raises(SessionEnded):  # signed out everywhere
        signed_in_user(db, session_id)
    assert authenticate(db, manager.username, temporary, max_failures=5, lock_minutes=1) == manager
    assert _user(db, manager.username).password_change_required
    assert _users(app)[manager.username]["password"] == "one-time, to be replaced"
    assert _users(app)[team["analyst"].username]["password"] == "their own"
    app.run()  # any next interaction: the password is gone
    assert not app.code


@pytest.mark.parametrize(
    ("actor", "target", "message"),
    [("admin", "admin", "Account page"), ("admin", "owner", "may not manage owners")],
)
def test_reset_password_errors(open_page: PageFactory, db: Database, team: dict[str, Actor], actor: str,
                               target: str, message: str) -> None:
    app = _pick(open_page(PAGE, team[actor]), db, team[target].username)
    _click(app, "Reset password")
    assert message in app.error[0].value
    assert not app.code
    assert not _user(db, team[target].username).password_change_required


# -- sender identities ---------------------------------------------------------------------------


def test_another_tenants_sms_sender_id_is_refused_with_a_message(
    open_page: PageFactory, db: Database, team: dict[str, Actor]
) -> None:
    rival = make_actor(db, make_tenant(db, "Rival"), Role.admin, "rival-admin")
    admin.update_tenant_settings(db, rival, {"sms_sender_id": "+14155552671"})
    app = open_page(PAGE, team["admin"])
    app.text_input(key="settings_sms_sender").input("+1 (415) 555-2671")
    _click(app, "Save settings")
    assert "already used by another tenant" in app.error[0].value
    assert not app.exception
    assert get_tenant_settings(db, team["admin"]).sms_sender_id is None


def test_without_an_email_sender_nothing_needs_verifying(
    open_page: PageFactory, team: dict[str, Actor]
) -> None:
    app = open_page(PAGE, team["admin"])
    assert any("needs no verification" in c.value for c in app.caption)


def test_the_email_sender_is_verified_through_dns_on_the_page(
    open_page: PageFactory, db: Database, team: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin.update_tenant_settings(db, team["admin"], {"email_sender": "sales@acme.example"})
    app = open_page(PAGE, team["admin"])
    assert "is not verified yet" in app.warning[0].value
    _click(app, "Get the DNS record")
    [record] = [c.value for c in app.code if c.value.startswith("leadflow-verification=")]
    zone: dict[str, list[str]] = {}
    monkeypatch.setattr(sender_verification.DnsPythonResolver, "txt_records",
                        lambda self, name: zone.get(name, []))
    _click(app, "Check DNS now")
    assert "No TXT record" in app.error[0].value and not app.exception
    zone["_leadflow.acme.example"] = [record]
    _click(app, "Check DNS now")
    assert "is verified" in app.success[0].value
    assert sender_verification.sender_status(db, team["admin"]).verified_by == "domain"


def test_the_email_sender_is_verified_with_a_code_on_the_page(
    open_page: PageFactory, db: Database, team: dict[str, Actor]
) -> None:
    admin.update_tenant_settings(db, team["admin"], {"email_sender": "Ada <ada@mail.example>"})
    app = open_page(PAGE, team["admin"])
    _click(app, "Send a code to the address")
    assert any("code was sent to" in c.value for c in app.caption)
    # The outbox (development) sends nothing: the page shows the email the address would get.
    [body] = [t.value for t in app.text if "enter this code" in t.value]
    code = next(word.strip(".:") for word in body.split() if word.strip(".:").isdigit())
    app.text_input(key="sender_code").input("12")
    _click(app, "Confirm the code")
    assert "not the code" in app.error[0].value and not app.exception
    app.text_input(key="sender_code").input(code)
    _click(app, "Confirm the code")
    assert "is verified" in app.success[0].value


def test_a_domain_another_tenant_verified_is_refused_on_the_page(
    open_page: PageFactory, db: Database, team: dict[str, Actor]
) -> None:
    rival = make_actor(db, make_tenant(db, "Rival"), Role.admin, "rival-admin")
    admin.update_tenant_settings(db, rival, {"email_sender": "sales@acme.example"})
    admin.update_tenant_settings(db, team["admin"], {"email_sender": "news@acme.example"})
    record = sender_verification.start_domain_verification(db, rival).dns_value or ""
    zone = {"_leadflow.acme.example": [record]}
    sender_verification.check_domain_verification(db, rival, resolver=type(
        "Zone", (), {"txt_records": lambda self, name: zone.get(name, [])})())
    app = open_page(PAGE, team["admin"])
    _click(app, "Get the DNS record")
    assert "verified as a sender by another tenant" in app.error[0].value and not app.exception


def _role_changes(db: Database, tenant_id: int) -> list[dict[str, Any]]:
    with db.session(system=True, read_only=True) as session:
        return list(
            session.scalars(
                select(AuditLog.details)
                .where(AuditLog.tenant_id == tenant_id, AuditLog.action == "change_role")
                .order_by(AuditLog.id)
            )
        )


@pytest.mark.parametrize(
    ("actor", "new_role", "lost"),
    [
        # Managers read leads, so the Leads page stays; importing, editing and erasing go.
        ("owner", "manager", ("Admin", "import, edit and erase leads", "manage users")),
        ("admin", "analyst", ("Admin", "Leads", "Review queue", "start, pause or cancel runs")),
        ("owner", "admin", ("make or remove owners",)),
    ],
)
def test_lowering_ones_own_role_asks_first_and_names_what_is_lost(
    open_page: PageFactory,
    db: Database,
    team: dict[str, Actor],
    actor: str,
    new_role: str,
    lost: tuple[str, ...],
) -> None:
    me = team[actor]
    make_actor(db, me.tenant_id, Role.owner, "second-owner")  # so that an owner may step down
    app = _pick(open_page(PAGE, me), db, me.username)
    app.selectbox(key="manage_role").set_value(new_role)
    _click(app, "Change role")
    assert not app.exception
    asked = " ".join(w.value for w in app.warning)
    assert f"from {actor} to {new_role}" in asked
    assert all(item in asked for item in lost)
    assert _user(db, me.username).role == actor and _role_changes(db, me.tenant_id) == []
    _click(app, "Keep my role")
    assert not app.warning and _user(db, me.username).role == actor
    app.selectbox(key="manage_role").set_value(new_role)
    _click(app, "Change role")
    _click(app, "Yes, change my role")
    assert not app.exception
    assert _user(db, me.username).role == new_role
    assert _role_changes(db, me.tenant_id) == [{"username": me.username, "from": actor, "to": new_role}]


def test_changing_another_users_role_needs_no_confirmation(
    open_page: PageFactory, db: Database, team: dict[str, Actor]
) -> None:
    app = _pick(open_page(PAGE, team["owner"]), db, team["admin"].username)
    app.selectbox(key="manage_role").set_value("analyst")
    _click(app, "Change role")
    assert not app.warning
    assert _user(db, team["admin"].username).role == "analyst"


def test_an_owner_creates_an_organisation_with_its_first_admin_from_the_dashboard(
    open_page: PageFactory, db: Database, team: dict[str, Actor]
) -> None:
    owner = team["owner"]
    app = open_page(PAGE, owner)
    assert list(table(app, TABLES["organisations"])["organisation"]) == ["Acme"]
    for key, value in {"organisation_name": "Globex *Corp*", "organisation_country": "de",
                       "organisation_username": "olivia", "organisation_user_name": "Olivia Pope",
                       "organisation_email": "olivia@globex.example"}.items():
        app.text_input(key=key).input(value)
    app = _click(app, "Create the organisation")
    assert not app.exception and not app.error
    assert app.success[0].value.startswith(
        "Globex \\*Corp\\* is created, with olivia as its admin. Give them this initial password now")
    password = app.code[0].value
    listed = table(app, TABLES["organisations"])
    assert list(listed["organisation"]) == ["Acme", "Globex *Corp*"]
    assert list(listed["users"]) == [len(team), 1]
    olivia = authenticate(db, "olivia", password, max_failures=5, lock_minutes=1)
    assert olivia.role is Role.admin and olivia.tenant_id != owner.tenant_id
    with db.session(tenant_id=owner.tenant_id, read_only=True) as session:
        creator = session.scalar(select(AuditLog.user_id).where(AuditLog.action == "tenants.create"))
    assert creator == owner.user_id
    # The same name again: a message, and nothing new.
    app.text_input(key="organisation_name").input("globex *corp*")
    app.text_input(key="organisation_username").input("someone")
    app = _click(app, "Create the organisation")
    assert "already exists" in app.error[0].value
    assert len(table(app, TABLES["organisations"])) == 2
