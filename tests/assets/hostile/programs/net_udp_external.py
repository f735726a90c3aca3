# category: network
# expect: {"returncode": 1, "stderr": "Network is unreachable"}
import socket

socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"exfiltrate", ("8.8.8.8", 53))
