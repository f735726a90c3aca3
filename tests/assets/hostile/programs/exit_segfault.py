# category: signal
# expect: {"limit": "segmentation fault", "report": "\\[killed: segmentation fault\\]"}
import ctypes

ctypes.string_at(0)
