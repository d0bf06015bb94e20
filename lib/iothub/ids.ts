/**
 * IoT Hub's identifier rules. Device ids and message ids differ by one character:
 *
 * - Device ids (IoT Hub identity registry, "Device identity properties"): up to 128 case-sensitive
 *   ASCII characters, letters and digits plus `- . + % _ # * ? ! ( ) , = @ $ '` and `:` (listed
 *   by older revisions of that page and by IoT Hub's Event Grid device event schema). No `;`:
 *   the current page leaves it out, and a `;` in a device id would let the id rewrite the
 *   `Key=Value;…` device connection string built from it (`x;HostName=evil`).
 * - Message and correlation ids (IoT Hub message system properties): the same set plus `;`.
 */
const deviceIdChars = "A-Za-z0-9\\-:.+%_#*?!(),=@$'";

export const deviceIdPattern = new RegExp(`^[${deviceIdChars}]{1,128}$`);
export const deviceIdRule =
  "1 to 128 characters: letters, digits and - : . + % _ # * ? ! ( ) , = @ $ '";

/** A prefix that generated device ids start with (the simulator's `<prefix><n>`). */
export function deviceIdPrefixPattern(maxLength: number): RegExp {
  return new RegExp(`^[${deviceIdChars}]{1,${maxLength}}$`);
}

export const messageIdPattern = new RegExp(`^[${deviceIdChars};]{1,128}$`);
export const messageIdRule =
  "1 to 128 characters: letters, digits and - : . + % _ # * ? ! ( ) , = @ ; $ '";

/** A route or body id with the rule it must follow (the rule text goes into error messages). */
export interface IdRule {
  readonly pattern: RegExp;
  readonly rule: string;
}

export const deviceIdSyntax: IdRule = { pattern: deviceIdPattern, rule: deviceIdRule };
export const messageIdSyntax: IdRule = { pattern: messageIdPattern, rule: messageIdRule };
