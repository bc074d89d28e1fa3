#!/usr/bin/python3
"""An SMTP sink that counts what it accepts, for scripts/cluster.sh.

    /usr/bin/python3 scripts/smtp-sink.py PORT LOG

Accepts every message (aiosmtpd, Debian's python3-aiosmtpd) and appends one
line per recipient to LOG: `RECIPIENT<TAB>MESSAGE-ID`, flushed at once, so
that a reader can count deliveries and tell a repeat of the same message
(same Message-ID) from a second message. PORT 0 picks a free port; the port
listened on is the first line printed.
"""

import asyncio
import sys
from email.parser import BytesHeaderParser

from aiosmtpd.smtp import SMTP


class Counter:
    def __init__(self, log):
        self.log = log
        self.parser = BytesHeaderParser()

    async def handle_DATA(self, server, session, envelope):
        headers = self.parser.parsebytes(envelope.original_content)
        message_id = (headers.get("Message-ID") or "-").strip()
        self.log.write("".join(f"{rcpt}\t{message_id}\n" for rcpt in envelope.rcpt_tos))
        self.log.flush()
        return "250 2.0.0 Ok: counted"


async def serve(port, log):
    loop = asyncio.get_running_loop()
    counter = Counter(log)
    server = await loop.create_server(
        lambda: SMTP(counter, hostname="clearance-cluster-sink"),
        host="127.0.0.1",
        port=port,
        reuse_address=True,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "a", encoding="utf-8") as log:
        try:
            asyncio.run(serve(port, log))
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
