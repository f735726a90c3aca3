# category: network
# Only a loopback interface exists inside the sandbox.
# expect: {"ok": true, "stdout": "^\\[\\(1, 'lo'\\)\\]\\s*$"}
import socket

print(socket.if_nameindex())
