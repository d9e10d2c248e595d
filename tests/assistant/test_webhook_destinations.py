"""Where webhooks may go (public addresses and allowed networks only, checked at every POST), and one
slow receiver not holding up the others."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update

from assistant.access import Caller, audit_log
from assistant.config import Settings
from assistant.conversations.store import start_conversation
from assistant.conversations.tickets import create_ticket
from assistant.database import session_scope
from assistant.database.models import Webhook, WebhookDelivery
from assistant.webhooks import add_webhook, deliver_due, delivery, manage
from assistant.webhooks.destinations import BlockedDestination, pinned, resolve
from tests.helpers import WebhookReceiver

ADMIN = Caller.staff("admin", "root")


def allowed_networks(text: str) -> list:
    return Settings(webhook_allowed_networks=text).webhook_networks


LOOPBACK = allowed_networks("127.0.0.1/32")


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def _hand_over(settings) -> None:
    with session_scope(settings) as session:
        create_ticket(session, start_conversation(session, "chat", kb="shop").id, "the customer asked for a person")


def _only_public(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allowed_networks": ""})


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://169.254.169.254/latest/meta-data/",
                                 "http://10.1.2.3/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
                                 "https://192.168.1.20/hooks", "http://localhost/"])
def test_private_loopback_and_metadata_addresses_are_refused_unless_their_network_is_allowed(url):
    with pytest.raises(BlockedDestination, match="HELPMATE_WEBHOOK_ALLOWED_NETWORKS"):
        resolve(url, [])
    assert resolve("http://127.0.0.1:8080/", LOOPBACK) == "127.0.0.1"
    assert resolve("http://10.1.2.3/", allowed_networks("10.0.0.0/8, ::1/128")) == "10.1.2.3"
    assert resolve("https://93.184.215.14/hooks", []) == "93.184.215.14"  # public: no setting needed
    with pytest.raises(ValueError, match="'ten' is not a network"):
        allowed_networks("10.0.0.0/8, ten")


def test_a_mistyped_network_stops_start_up_with_the_setting_named():
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not a network"):
        Settings(webhook_allowed_networks="10.0.0.0/33")


def test_a_post_goes_to_the_checked_address_under_the_original_name():
    assert pinned("https://desk.example.com/hooks?x=1", "203.0.113.9") == (
        "https://203.0.113.9/hooks?x=1", {"Host": "desk.example.com", "Connection": "close"},
        {"sni_hostname": "desk.example.com"})
    assert pinned("http://bot:pw@desk.example.com:8080/h", "2001:db8::7") == (
        "http://bot:pw@[2001:db8::7]:8080/h", {"Host": "desk.example.com:8080", "Connection": "close"}, {})


def test_adding_a_private_url_is_refused_with_what_to_set(db_settings):
    public_only = _only_public(db_settings)
    with pytest.raises(BlockedDestination, match=r"127\.0\.0\.1/32"):
        manage.add(public_only, ADMIN, "http://127.0.0.1:9000/", ["ticket.opened"])
    with session_scope(db_settings) as session:
        assert session.scalars(select(Webhook)).all() == []
    assert [entry.action for entry in audit_log(db_settings)] == []
    manage.add(db_settings, ADMIN, "http://127.0.0.1:9000/", ["ticket.opened"])  # loopback is allowed in the tests
    with session_scope(db_settings) as session:
        assert session.scalars(select(Webhook.url)).all() == ["http://127.0.0.1:9000/"]


def test_a_delivery_to_a_blocked_address_fails_at_once_and_sends_nothing(db_settings, receiver):
    with session_scope(db_settings) as session:  # added without the check (or the setting changed since)
        add_webhook(session, ADMIN, receiver.url, ["ticket.opened"])
    _hand_over(db_settings)
    done = deliver_due(_only_public(db_settings))
    assert (done.delivered, done.retrying, done.failed) == (0, 0, 1)
    assert receiver.received == []
    with session_scope(db_settings) as session:
        row = session.scalars(select(WebhookDelivery)).one()
    assert row.status == "failed" and "not a public address" in row.last_error


def test_a_name_that_moves_to_a_private_address_after_the_check_is_not_followed(db_settings, receiver, monkeypatch):
    """DNS is the double here (the real resolver is used above): desk.test is public when the webhook is
    added and points at this machine when the POST is made; the POST connects to what was checked."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    answers = {"desk.test": "93.184.215.14"}
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real(answers.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    public_only = _only_public(db_settings)
    manage.add(public_only, ADMIN, f"http://desk.test:{port}/hooks/helpmate", ["ticket.opened"])
    answers["desk.test"] = "127.0.0.1"
    _hand_over(db_settings)
    assert deliver_due(public_only).failed == 1 and receiver.received == []
    with session_scope(db_settings) as session:
        session.execute(update(WebhookDelivery).values(status="pending", attempts=0))
    assert deliver_due(db_settings).delivered == 1  # with loopback allowed, it arrives, named as the URL names it
    headers, _ = receiver.received[0]
    assert headers["Host"] == f"desk.test:{port}"


def test_a_receiver_that_hangs_does_not_hold_up_the_others(db_settings, receiver, monkeypatch):
    """The hanging receiver answers only once the other has had both its deliveries: sent one after
    the other, the first POST would time out before then."""
    monkeypatch.setattr(delivery, "TIMEOUT_S", 3.0)
    others_done = threading.Event()

    class Hangs(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            others_done.wait(8)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hanging = ThreadingHTTPServer(("127.0.0.1", 0), Hangs)
    threading.Thread(target=hanging.serve_forever, daemon=True).start()

    def watch():
        while len(receiver.received) < 2 and not others_done.is_set():
            others_done.wait(0.05)
        others_done.set()

    try:
        with session_scope(db_settings) as session:  # the hanging one first: its deliveries are the oldest
            add_webhook(session, ADMIN, f"http://127.0.0.1:{hanging.server_address[1]}/", ["ticket.opened"])
            add_webhook(session, ADMIN, receiver.url, ["ticket.opened"])
        _hand_over(db_settings)
        _hand_over(db_settings)
        threading.Thread(target=watch, daemon=True).start()
        done = deliver_due(db_settings)
    finally:
        others_done.set()
        hanging.shutdown()
        hanging.server_close()
    assert (done.delivered, done.retrying, done.failed) == (4, 0, 0)
    assert len(receiver.received) == 2


def test_a_pinned_https_connection_is_not_reused_for_another_name(db_settings, monkeypatch):
    """Two webhooks on one address under two names: the second must get its own TLS connection, checked
    against its own name. Pooled, the POST for other.test went over the connection verified for
    desk.test (a keep-alive receiver; the certificate is a test one for desk.test, in tests/assistant/tls/)."""
    import ssl

    import httpx

    from assistant.webhooks.events import emit

    tls = Path(__file__).parent / "tls"
    hosts: list[str] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls / "desk-test-cert.pem", tls / "desk-test-key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real("127.0.0.1" if host.endswith(".test") else host, *a, **k))
    client = httpx.Client(verify=ssl.create_default_context(cafile=str(tls / "desk-test-cert.pem")))
    try:
        with session_scope(db_settings) as session:
            desk, _ = add_webhook(session, ADMIN, f"https://desk.test:{port}/h", ["ticket.opened"])
            other, _ = add_webhook(session, ADMIN, f"https://other.test:{port}/h", ["ticket.opened"])
            desk_id, other_id = desk.id, other.id
        with session_scope(db_settings) as session:
            emit(session, "ticket.opened", "shop", {"n": 1}, only=desk_id)
        assert deliver_due(db_settings, client=client).delivered == 1
        with session_scope(db_settings) as session:
            emit(session, "ticket.opened", "shop", {"n": 2}, only=other_id)
        assert deliver_due(db_settings, client=client).retrying == 1
        with session_scope(db_settings) as session:
            error = session.scalars(select(WebhookDelivery.last_error).where(WebhookDelivery.webhook_id == other_id)).one()
        assert "certificate" in error and hosts == [f"desk.test:{port}"]
    finally:
        client.close()
        server.shutdown()
        server.server_close()
