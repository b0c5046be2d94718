"""Traffic: request classes, length distributions, arrival processes, SLOs, presets and trace readers.

The serving simulator consumes one thing from here: a columnar `RequestTable` (one row per request),
either generated from a `Workload` (a mix of `RequestClass`es plus an arrival process) or read from a
production trace (Azure LLM inference, BurstGPT, Mooncake). Everything is sampled with NumPy in
fixed-size blocks from one `Generator(PCG64(seed))`, so a seed gives the same rows bit for bit, a
million-request run streams in bounded memory, and `requests(n)` is a prefix of `requests(m)` for m > n
(except that the very last row never publishes a cache group, see `RequestTable.cache_group`).

Conventions (the simulator relies on them):
- `RequestClass.input_len` is the NEW prompt tokens of one turn (user message, retrieved documents,
  tool result); a row's `input_len` adds the class's shared prefix and, for follow-up turns, the
  session history (all previous turns' input + output).
- `rate` of an open-loop process counts sessions (turn-0 requests) per second; follow-up turns are
  issued by the simulator `think_s` after the previous turn finishes. For single-turn classes
  sessions and requests are the same thing.
- Arrivals start at t = 0 (the first session arrives at 0, then the process's gaps follow).
- Prefix caching: a request reads the first `prefix_len` tokens of token stream `prefix_group` (a hit
  for whatever part of it is cached) and leaves them cached; when it finishes, its whole context
  (input + output) becomes stream `cache_group`, which later requests (the session's next turn, or a
  Mooncake request sharing its blocks) read. Group ids: 0..C-1 are the classes' system prompts,
  C + session id are session histories; in traces, a row's own id.

Modules (each imports the others directly, never this package): `errors` (WorkloadError), `classes`
(LengthDist, SLO, RequestClass), `arrivals` (Poisson, Gamma, Closed, Offline, Trace), `table` (RequestTable),
`stream` (Workload, fixed), `files` (YAML files and presets; `schema` holds their pydantic models) and
`traces` (Azure/BurstGPT CSV and Mooncake JSONL readers). This package re-exports the names used elsewhere.
"""

from tokenfab.workload.arrivals import Closed, Gamma, Offline, Poisson, Trace, closed
from tokenfab.workload.classes import SLO, LengthDist, RequestClass
from tokenfab.workload.errors import WorkloadError
from tokenfab.workload.files import load_workload, preset, preset_info, preset_names, workload_from_dict
from tokenfab.workload.stream import Workload, fixed
from tokenfab.workload.table import RequestTable
from tokenfab.workload.traces import iter_trace, read_trace

__all__ = [
    "SLO", "Closed", "Gamma", "LengthDist", "Offline", "Poisson", "RequestClass", "RequestTable", "Trace",
    "Workload", "WorkloadError", "closed", "fixed", "iter_trace", "load_workload", "preset", "preset_info",
    "preset_names", "read_trace", "workload_from_dict",
]
