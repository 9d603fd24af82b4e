"""The webserver's GraphQL documents the topology tests send beyond the force sync's own: the UI's
schedule and sensor toggles and what they read."""

from __future__ import annotations


def _toggle(variables: str, call: str, success: str) -> str:
    """A start or stop mutation of a schedule or sensor, its answer under `result`."""
    return f"""
mutation Toggle({variables}) {{
  result: {call} {{
    __typename
    ... on {success}
    ... on Error {{ message }}
  }}
}}
"""


_SCHEDULE_STATE = "ScheduleStateResult { scheduleState { id status } }"
# By kind of instigator (schedule, sensor).
START = {
    "schedule": _toggle(
        "$selector: ScheduleSelector!", "startSchedule(scheduleSelector: $selector)", _SCHEDULE_STATE
    ),
    "sensor": _toggle(
        "$selector: SensorSelector!",
        "startSensor(sensorSelector: $selector)",
        "Sensor { sensorState { id status } }",
    ),
}
STOP = {
    "schedule": _toggle("$id: String!", "stopRunningSchedule(id: $id)", _SCHEDULE_STATE),
    "sensor": _toggle(
        "$id: String!", "stopSensor(id: $id)", "StopSensorMutationResult { instigationState { id status } }"
    ),
}
STATE = {
    "schedule": """
query State($selector: ScheduleSelector!) {
  state: scheduleOrError(scheduleSelector: $selector) { ... on Schedule { scheduleState { id } } }
}
""",
    "sensor": """
query State($selector: SensorSelector!) {
  state: sensorOrError(sensorSelector: $selector) { ... on Sensor { sensorState { id } } }
}
""",
}
INSTIGATORS = """
query Instigators($selector: RepositorySelector!) {
  repository: repositoryOrError(repositorySelector: $selector) {
    ... on Repository {
      schedules { name scheduleState { status } }
      sensors { name targets { pipelineName } sensorState { status } }
    }
  }
}
"""
SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  state: sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { ticks(limit: 20) { id status } } }
  }
}
"""
