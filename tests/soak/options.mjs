// Command-line options of the soak drivers: `--some-name value` sets `defaults.someName`, as a
// number when the default is one. An unknown or incomplete option prints the known ones and
// exits with status 2.
export function parseOptions(defaults, argv, who) {
  const opt = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const v = argv[i + 1];
    if (!(k in opt) || v === undefined) {
      const known = Object.keys(defaults).map((n) => `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
      console.error(`${who}: unknown or incomplete option ${argv[i]}; options: ${known.join(' ')}`);
      process.exit(2);
    }
    opt[k] = typeof defaults[k] === 'number' ? Number(v) : v;
  }
  return opt;
}
