"""A private D-Bus session bus with a stand-in for the desktop's notification server, for the
tests of ``desktop://`` on Linux.

* :class:`PrivateSessionBus`: a real ``dbus-daemon`` (Debian's, the one a desktop session runs)
  on a socket in a test folder, with no service files (nothing is auto-started) and no system
  bus. Its address goes into ``DBUS_SESSION_BUS_ADDRESS``, where libdbus (and so apprise's
  ``dbus://`` plugin, through dbus-python) looks for the session bus.
* :class:`NotificationServer`: owns ``org.freedesktop.Notifications`` on that bus and answers
  as the Desktop Notifications Specification (1.2) says a server does: ``Introspect``,
  ``GetCapabilities``, ``GetServerInformation`` and ``Notify``, whose arguments must have the
  spec's signature ``susssasa{sv}i`` (a wrong one gets ``InvalidArgs``, as GNOME's and KDE's
  servers answer). Each Notify is recorded. Written with jeepney, a pure-Python D-Bus library
  independent of the libdbus the client uses, so what is recorded crossed a real bus in the
  wire format.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fake_channels import Recorder

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
NOTIFY_SIGNATURE = "susssasa{sv}i"  # the spec's Notify(app_name, replaces_id, app_icon,
# summary, body, actions, hints, expire_timeout)

# What a desktop's server returns to Introspect (its Notify part is what dbus-python reads to
# marshal the call: replaces_id as uint32, hints as a{sv}).
INTROSPECTION = f"""<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node name="{OBJECT_PATH}">
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
  </interface>
  <interface name="{BUS_NAME}">
    <method name="GetCapabilities"><arg type="as" direction="out"/></method>
    <method name="Notify">
      <arg name="app_name" type="s" direction="in"/>
      <arg name="replaces_id" type="u" direction="in"/>
      <arg name="app_icon" type="s" direction="in"/>
      <arg name="summary" type="s" direction="in"/>
      <arg name="body" type="s" direction="in"/>
      <arg name="actions" type="as" direction="in"/>
      <arg name="hints" type="a{{sv}}" direction="in"/>
      <arg name="expire_timeout" type="i" direction="in"/>
      <arg name="id" type="u" direction="out"/>
    </method>
    <method name="CloseNotification"><arg name="id" type="u" direction="in"/></method>
    <method name="GetServerInformation">
      <arg name="name" type="s" direction="out"/>
      <arg name="vendor" type="s" direction="out"/>
      <arg name="version" type="s" direction="out"/>
      <arg name="spec_version" type="s" direction="out"/>
    </method>
    <signal name="NotificationClosed">
      <arg name="id" type="u"/><arg name="reason" type="u"/>
    </signal>
  </interface>
</node>
"""

# A session bus as a desktop's, less what a test does not need: no service activation (no
# <servicedir>), one socket in the test's folder, anyone on it may own any name.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def missing() -> str | None:
    """Why a desktop notification cannot be delivered in a test here, or None when it can:
    dbus-daemon, jeepney and dbus-python with its GLib main loop (what apprise's ``dbus://``
    needs) must all be there."""
    if shutil.which("dbus-daemon") is None:
        return "no dbus-daemon on this machine (Debian package dbus-daemon)"
    try:
        import jeepney  # noqa: F401
    except ImportError:
        return "jeepney is not installed (the [dev] extra)"
    try:
        import dbus.mainloop.glib  # noqa: F401
    except ImportError:
        return ("dbus-python with its GLib main loop is not installed: `make desktop` builds it "
                "as root (Debian's libdbus-1-dev, libglib2.0-dev)")
    return None


class PrivateSessionBus:
    """``dbus-daemon`` on ``folder/bus``, stopped by :meth:`close`."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "session.conf"
        config.write_text(BUS_CONFIG.format(socket=folder / "bus"))
        self.process = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile",
             "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        # dbus-daemon prints its address once it listens: no polling, no deadline
        self.address = self.process.stdout.readline().strip()
        if not self.address:
            error = self.process.stderr.read() if self.process.stderr else ""
            self.process.wait()
            raise RuntimeError(f"dbus-daemon did not start: {error.strip()}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@dataclass(frozen=True)
class Notification:
    """One ``Notify`` call as the server received it."""

    app_name: str
    replaces_id: int
    app_icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, tuple[str, Any]]  # name -> (D-Bus signature, value)
    expire_timeout: int


class NotificationServer(Recorder[Notification]):
    """``org.freedesktop.Notifications`` on the bus at ``address``, recording each Notify.

    Serves until the bus closes (the daemon's end of the socket closes, so the thread's
    blocking receive ends: no polling)."""

    def __init__(self, address: str) -> None:
        super().__init__()
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection

        # a generous bound for the authentication handshake with the local daemon: a hang
        # guard, not a deadline the test relies on
        self.conn = open_dbus_connection(address, auth_timeout=60.0)
        bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                          interface="org.freedesktop.DBus")
        # flags 4: DBUS_NAME_FLAG_DO_NOT_QUEUE; reply 1: the primary owner
        reply = self.conn.send_and_get_reply(
            new_method_call(bus, "RequestName", "su", (BUS_NAME, 4)), timeout=60.0)
        if reply.body != (1,):
            raise RuntimeError(f"could not own {BUS_NAME}: RequestName answered {reply.body}")
        self.calls: list[tuple[str, str]] = []  # (member, signature) of every method call
        self.refused: list[str] = []
        self.thread = threading.Thread(target=self._serve, name="fake-notifications",
                                       daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from jeepney import HeaderFields, MessageType, new_error, new_method_return

        next_id = 1
        while True:
            try:
                msg = self.conn.receive()
            except (OSError, EOFError, ConnectionError):
                return  # the bus closed
            fields = msg.header.fields
            if msg.header.message_type != MessageType.method_call:
                continue  # the daemon's NameAcquired signal and the like
            member = fields.get(HeaderFields.member, "")
            signature = fields.get(HeaderFields.signature, "")
            interface = fields.get(HeaderFields.interface, "")
            path = fields.get(HeaderFields.path, "")
            self.calls.append((member, signature))
            if path != OBJECT_PATH:
                reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownObject", "s",
                                  (f"no object at {path}",))
            elif member == "Introspect":
                reply = new_method_return(msg, "s", (INTROSPECTION,))
            elif member == "GetCapabilities":
                reply = new_method_return(msg, "as", (["body"],))
            elif member == "GetServerInformation":
                reply = new_method_return(msg, "ssss", ("fake", "leverage tests", "1", "1.2"))
            elif member == "Notify" and interface in ("", BUS_NAME):
                if signature != NOTIFY_SIGNATURE:
                    self.refused.append(signature)
                    reply = new_error(msg, "org.freedesktop.DBus.Error.InvalidArgs", "s",
                                      (f"Notify takes ({NOTIFY_SIGNATURE}), got ({signature})",))
                else:
                    app, replaces, icon, summary, body, actions, hints, expire = msg.body
                    self.record(Notification(app, replaces, icon, summary, body, list(actions),
                                             dict(hints), expire))
                    reply = new_method_return(msg, "u", (next_id,))
                    next_id += 1
            else:
                reply = new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                                  (f"no method {interface}.{member}",))
            try:
                self.conn.send(reply)
            except OSError:
                return

    def close(self) -> None:
        """Disconnect: the serving thread's blocking receive sees the end of the socket."""
        with contextlib.suppress(OSError):  # already closed by the bus
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join()
        self.conn.close()
