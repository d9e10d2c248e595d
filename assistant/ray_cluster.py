"""Joining a Ray cluster for batch work (ingestion, sentiment scoring); Helpmate runs no cluster of its own.

Ray is optional: only the ``ray`` engines import it, and they say how to install it when it is missing.
"""

from __future__ import annotations

RAY_PIN = "ray==2.60.0"


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster cannot give the workers a batch job needs."""


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` (or ``RAY_ADDRESS``; a new local instance when neither is set).

    Returns whether this call made the connection, in which case the caller shuts it down; an
    already initialised Ray (an application's or a test's) is used as it is and left running.
    """
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(f"the ray engine needs Ray: pip install '{RAY_PIN}' (on every machine of the cluster)") from None
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": False}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=num_cpus, **options)
    return True


def start_actors(actor_class: type, args: tuple, count: int | None, timeout_s: float) -> list:
    """``count`` actors of ``actor_class`` (default: one per CPU of the cluster), 1 CPU each, spread over
    the machines; waits until each has answered ``describe()`` and returns them with the answers."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    count = max(1, count or cpus)
    remote_class = ray.remote(num_cpus=1)(actor_class)
    actors = [remote_class.options(scheduling_strategy="SPREAD").remote(*args) for _ in range(count)]
    try:
        described = ray.get([actor.describe.remote() for actor in actors], timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        stop_actors(actors)
        raise RayUnavailableError(f"{count} Ray workers did not start within {timeout_s:g} s: each needs 1 free CPU "
                                  f"(the cluster has {cpus}; is another job holding them?)") from None
    except BaseException:
        stop_actors(actors)
        raise
    return list(zip(actors, described))


def stop_actors(actors: list) -> None:
    import ray

    for actor in actors:
        ray.kill(actor)


def disconnect(owned: bool) -> None:
    """Shut Ray down if ``connect`` started this process's connection."""
    import ray

    if owned and ray.is_initialized():
        ray.shutdown()
