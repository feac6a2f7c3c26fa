from celery import shared_task

from whaleproject import health


@shared_task(name="whaleproject.tasks.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Proves beat and a worker are alive: the health check reads the time it stores."""
    health.record_beat()
