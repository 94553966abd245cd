// A value from a file, shown in an error message: JSON where it can be written (bigints as
// digits), cut to a few dozen characters, and never a throw (JSON.stringify overflows the stack on
// deeply nested values and refuses bigints; a hostile file has both).

export function preview(value: unknown, max = 60): string {
  let text: string;
  try {
    text = JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? `${v}` : v)) ?? String(value);
  } catch {
    text = Array.isArray(value) ? '[a deeply nested array]' : '{a deeply nested object}';
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** preview(), but a string as it is (cut to `max`), for messages that name a value such as 'yarn'. */
export function bare(value: unknown, max = 60): string {
  if (typeof value !== 'string') return preview(value, max);
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
