/** IoT Hub's documented limits that more than one part of the app states or checks. */

/** IoT Hub's cloud-to-device message limit (64 KB). */
export const maxC2dMessageBytes = 64 * 1024;
