"""A Twilio-compatible simulator: the demo and the tests exercise the real SMS and voice path against it."""

from app.notify.simulator.app import ProviderApis, SimulatorConfig, SimulatorState, create_simulator, standalone

__all__ = ["ProviderApis", "SimulatorConfig", "SimulatorState", "create_simulator", "standalone"]
