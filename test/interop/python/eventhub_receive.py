"""Reads device-to-cloud events from the local IoT Hub with Python azure-eventhub (pure-Python AMQP).

Usage: eventhub_receive.py <connection string> <CA file> <AMQPS port> <events wanted> <timeout s>

Prints one JSON object with the hub's partition properties and the events read (from the start
of every partition). The client always dials port 5671 (it drops any port in `Endpoint`), and
tests run many hubs on ephemeral ports, so this script sends the client's connection for 5671 to
the hub's AMQPS port instead. Everything else is the client as a user runs it, trusting the
hub's CA with `connection_verify`.
"""
import json
import sys
import threading

from azure.eventhub import EventHubConsumerClient
from azure.eventhub._pyamqp import _transport


def redirect_standard_port(port):
    connect = _transport._AbstractTransport._connect

    def _connect(self, host, wanted, timeout):
        return connect(self, host, port if wanted == 5671 else wanted, timeout)

    _transport._AbstractTransport._connect = _connect


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def describe(partition_id, event):
    return {
        "partition": partition_id,
        "body": event.body_as_str(),
        "sequenceNumber": event.sequence_number,
        "properties": {text(k): text(v) for k, v in (event.properties or {}).items()},
        "system": {text(k): text(v) for k, v in event.system_properties.items() if isinstance(v, (str, bytes, int))},
    }


def main():
    connection_string, ca_file, port, wanted, timeout = sys.argv[1:6]
    redirect_standard_port(int(port))
    client = EventHubConsumerClient.from_connection_string(
        connection_string, consumer_group="$Default", connection_verify=ca_file
    )
    result = {"hub": None, "partitions": [], "events": []}
    done = threading.Event()
    with client:
        hub = client.get_eventhub_properties()
        result["hub"] = {"name": hub["eventhub_name"], "partitionIds": hub["partition_ids"]}
        for partition_id in hub["partition_ids"]:
            p = client.get_partition_properties(partition_id)
            result["partitions"].append({"id": p["id"], "lastSequenceNumber": p["last_enqueued_sequence_number"]})

        def on_event(partition_context, event):
            if event is None:
                return
            result["events"].append(describe(partition_context.partition_id, event))
            if len(result["events"]) >= int(wanted):
                done.set()

        worker = threading.Thread(
            target=client.receive,
            kwargs={"on_event": on_event, "starting_position": "-1"},
            daemon=True,
        )
        worker.start()
        done.wait(float(timeout))
    print(json.dumps(result))
    return 0 if done.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
