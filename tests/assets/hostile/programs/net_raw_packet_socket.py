# category: network
# expect: {"returncode": 1, "stderr": "Operation not permitted"}
import socket

socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
