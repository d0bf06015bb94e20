"""An IoT Hub device written with paho-mqtt as Microsoft's "communicate with IoT Hub using MQTT"
doc shows it: MQTT 3.1.1 over TLS, client id = device id, user name
`<host>/<device id>/?api-version=2021-04-12`, a SAS token as password.

Usage: paho_device.py <host name> <port> <CA file> <device id> <SAS token>

Sends one telemetry message with application properties and a content type, subscribes to its
cloud-to-device topic, prints `{"event": "ready"}`, then prints the first C2D message it gets as
`{"event": "c2d", "topic": …, "payload": …}` and exits. Every step is one JSON line on stdout.
"""
import json
import sys
import threading
import urllib.parse

import paho.mqtt.client as mqtt


def say(**fields):
    print(json.dumps(fields), flush=True)


def main():
    host, port, ca_file, device_id, token = sys.argv[1:6]
    hub_host = host.split(":")[0]
    received = threading.Event()
    client = mqtt.Client(client_id=device_id, protocol=mqtt.MQTTv311, clean_session=True)
    client.username_pw_set(f"{host}/{device_id}/?api-version=2021-04-12", password=token)
    client.tls_set(ca_certs=ca_file)

    def on_connect(_client, _userdata, _flags, rc):
        if rc != 0:
            say(event="refused", code=rc)
            received.set()
            return
        bag = urllib.parse.urlencode({"sensor": "paho", "$.ct": "application/json", "$.ce": "utf-8"})
        # Runs on paho's network thread: queue both, never wait here for the PUBACK.
        client.publish(
            f"devices/{device_id}/messages/events/{bag}", json.dumps({"temperature": 21.5}), qos=1
        )
        client.subscribe(f"devices/{device_id}/messages/devicebound/#", qos=1)

    def on_subscribe(_client, _userdata, _mid, granted):
        say(event="ready", granted=list(granted))

    def on_message(_client, _userdata, message):
        say(event="c2d", topic=message.topic, payload=message.payload.decode("utf-8"))
        received.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(hub_host, int(port), keepalive=60)
    client.loop_start()
    ok = received.wait(60)
    client.disconnect()
    client.loop_stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
