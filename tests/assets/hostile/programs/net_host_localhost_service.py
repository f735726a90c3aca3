# category: network
# The test process listens on this port of the host's loopback; the sandbox has its own loopback.
# expect: {"returncode": 1, "stderr": "Connection refused"}
import socket

socket.create_connection(("127.0.0.1", {{host_port}}), timeout=1).sendall(b"hello from the sandbox")
