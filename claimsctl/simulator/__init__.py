"""`claimsctl simulate`: seeded, reproducible, rate-configurable traffic for the claims platform.

Pure planners (entities, lifecycle, planner, telematics, landing) decide what happens; `database`, the Kafka
sink in `run` and `landing.LandingUploader` do the I/O. Entry point: `run_simulation`.
"""

from claimsctl.simulator.run import SimulationCounters, default_start_time, run_simulation

__all__ = ["SimulationCounters", "default_start_time", "run_simulation"]
