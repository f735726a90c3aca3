# category: network
# expect: {"returncode": 1, "stderr": "Network is unreachable"}
import socket

socket.create_connection(("1.1.1.1", 80), timeout=1)
