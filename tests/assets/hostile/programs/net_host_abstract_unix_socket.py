# category: network
# The test process listens on this abstract unix socket; abstract sockets belong to the network namespace.
# expect: {"returncode": 1, "stderr": "Connection refused"}
import socket

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0{{abstract_socket}}")
s.sendall(b"hello from the sandbox")
