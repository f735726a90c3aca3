# category: network
# expect: {"returncode": 1, "stderr": "OSError: \\[Errno (101|99)\\]"}
import socket

socket.create_connection(("2606:4700:4700::1111", 80), timeout=1)
