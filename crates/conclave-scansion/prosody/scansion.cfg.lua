-- Prosody configuration for running the scansion scripts (tests/scansion/)
-- against Prosody, as Prosody's own test suite does: any password is
-- accepted, nothing is encrypted or kept on disk.
--
-- Prosody refuses to run as root: run it as the prosody user, with a
-- directory it can write in PROSODY_RUN_DIR (see ../README.md):
--   export PROSODY_RUN_DIR=$(mktemp -d) && chown prosody "$PROSODY_RUN_DIR"
--   runuser -u prosody -- env PROSODY_RUN_DIR="$PROSODY_RUN_DIR" \
--     prosody -F --config crates/conclave-scansion/prosody/scansion.cfg.lua
-- PROSODY_C2S_PORT listens elsewhere than 5222, PROSODY_PROXY65_PORT
-- elsewhere than 5000. A certificate for
-- localhost in $PROSODY_RUN_DIR/certs (localhost.crt, localhost.key)
-- enables STARTTLS; without one, streams stay in the clear.

local run_dir = os.getenv("PROSODY_RUN_DIR") or "/tmp/prosody-scansion"

pidfile = run_dir .. "/prosody.pid"
data_path = run_dir .. "/data"
certificates = run_dir .. "/certs"
log = { { levels = { min = "info" }, to = "file", filename = run_dir .. "/prosody.log" } }

admins = { "admin@localhost" }
interfaces = { "127.0.0.1" }
c2s_ports = { tonumber(os.getenv("PROSODY_C2S_PORT") or "5222") }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
proxy65_ports = { tonumber(os.getenv("PROSODY_PROXY65_PORT") or "5000") }
proxy65_interfaces = { "127.0.0.1" }

modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "ping"; "time"; "version"; "posix";
	"blocklist";
}
modules_disabled = { "s2s" }

authentication = "insecure"
insecure_open_authentication = "Yes please, I know what I'm doing!"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
storage = "memory"

VirtualHost "localhost"

Component "conference.localhost" "muc"

Component "proxy.localhost" "proxy65"
