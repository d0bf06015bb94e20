/**
 * IoT Hub's identifier rules (device ids, message ids, correlation ids): up to 128 case-sensitive
 * characters, ASCII letters and digits plus `- : . + % _ # * ? ! ( ) , = @ ; $ '`.
 */
export const hubIdPattern = /^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/;
export const hubIdRule =
  "1 to 128 characters: letters, digits and - : . + % _ # * ? ! ( ) , = @ ; $ '";
