"""Fleet planning month by month: `plan` (the plan file), `inputs` (plan -> SLO capacities, costs, the
programme's numbers), `milp` (the mixed-integer programme, HiGHS), `scenarios` (shocks, bargaining power) and
`planner` (`plan_fleet`: plan file -> one optimal plan per scenario -> rows)."""
