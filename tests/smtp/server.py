#!/usr/bin/python3
"""A real SMTP server for the tests: aiosmtpd, storing what it receives.

    /usr/bin/python3 tests/smtp/server.py PORT DIR [--tls starttls|implicit]
                                                   [--login USER:PASSWORD]
                                                   [--delay SECONDS]
                                                   [--no-pipelining]

PORT 0 picks a free port. The port listened on is the first line printed.
Every accepted message is stored whole as DIR/msg-NNNNNN.json:
{"from": ..., "to": [...], "data": "<the raw message>", "peer_port": N,
"tls": bool, "user": login or null, "pipelined": bool} (the client's port
tells connections apart; pipelined: the client's RCPT was already there
when its MAIL was read, as when it wrote the envelope in one go), written to a temporary name and renamed, so a reader never sees
half a message.

--tls offers STARTTLS, or speaks TLS from the first byte, with the
certificate for 127.0.0.1 in tests/fixtures/smtp (signed by ca.pem there).
--login requires AUTH with that user and password before MAIL.
--delay waits that long before answering each message's data, as a slow
relay does. The server offers PIPELINING (RFC 2920), as Postfix does;
--no-pipelining leaves it out of the EHLO reply.

DIR/control.json, re-read at every MAIL and RCPT, changes the answers while
the server runs: {"rcpt@x": 550, "other@x": 451} answers that code to RCPT
for that address (any case; 250 accepts it again); {"*": 421} answers it
to every MAIL FROM, and with 421 the server then closes the connection, as
a throttling relay does.
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import ssl
import warnings

from aiosmtpd.smtp import SMTP, AuthResult

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "smtp")

TEXTS = {
    421: "4.7.0 Too many messages, slow down",
    450: "4.2.1 Mailbox busy, try later",
    451: "4.3.0 Local error, try again later",
    452: "4.3.1 Insufficient storage",
    550: "5.1.1 Recipient address rejected: unknown user",
    552: "5.2.2 Mailbox full",
    554: "5.7.1 Rejected",
}


class Store:
    def __init__(self, directory, delay=0.0, pipelining=True):
        self.directory = directory
        self.delay = delay
        self.pipelining = pipelining
        existing = [n for n in os.listdir(directory) if n.startswith("msg-")]
        self.numbers = itertools.count(len(existing) + 1)

    def control(self):
        try:
            with open(os.path.join(self.directory, "control.json")) as f:
                return {k.lower(): int(v) for k, v in json.load(f).items()}
        except FileNotFoundError:
            return {}

    @staticmethod
    def reply(code):
        return f"{code} {TEXTS.get(code, 'As told by the test')}"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            # Before the last line, which is the one without a dash.
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # What the client wrote after its MAIL and the server has not yet
        # read (asyncio's StreamReader keeps it in _buffer).
        envelope.pipelined = bool(server._reader._buffer)
        code = self.control().get("*", 250)
        if code != 250:
            if code == 421:
                asyncio.get_running_loop().call_soon(server.transport.close)
            return self.reply(code)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.control().get(address.lower(), 250)
        if code != 250:
            return self.reply(code)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        number = next(self.numbers)
        name = f"msg-{number:06d}.json"
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8", "replace"),
            "peer_port": session.peer[1],
            "tls": server.transport.get_extra_info("sslcontext") is not None,
            "user": session.auth_data,
            "pipelined": getattr(envelope, "pipelined", False),
        }
        temp = os.path.join(self.directory, f".{name}.tmp")
        with open(temp, "w") as f:
            json.dump(record, f)
        os.replace(temp, os.path.join(self.directory, name))
        return f"250 2.0.0 Ok: queued as {number:06d}"


def authenticator(login):
    """Accepts exactly USER:PASSWORD; the user is kept with the session."""
    user, _, password = login.partition(":")

    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        if not ok:
            # Not handled: aiosmtpd then answers 535 itself.
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=user)

    return check


async def serve(args):
    store = Store(args.dir, args.delay, pipelining=not args.no_pipelining)
    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(
            os.path.join(FIXTURES, "server.pem"), os.path.join(FIXTURES, "server.key")
        )
    options = {"hostname": "clearance-test-smtp", "enable_SMTPUTF8": True}
    if args.tls == "starttls":
        options["tls_context"] = context
    if args.login:
        options["authenticator"] = authenticator(args.login)
        options["auth_required"] = True
        # Tests log in over plain connections too (and with implicit TLS
        # aiosmtpd does not know the line is encrypted): no warnings for it.
        options["auth_require_tls"] = args.tls == "starttls"
        warnings.simplefilter("ignore")
        logging.getLogger("mail.log").setLevel(logging.ERROR)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(store, **options),
        host="127.0.0.1",
        port=args.port,
        reuse_address=True,
        ssl=context if args.tls == "implicit" else None,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("dir")
    parser.add_argument("--tls", choices=["starttls", "implicit"])
    parser.add_argument("--login")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--no-pipelining", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
