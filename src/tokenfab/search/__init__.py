"""Design-space search: the analytic screen, the chip search, the simulator tier, backends."""
