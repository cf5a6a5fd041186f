package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// topKeys are the keys of a config file's top level.
var topKeys = []string{"defaults", "include", "server", "services"}

// Load reads, decodes and validates the config file at path.
//
// Decoding is strict: a key goinetd does not know is an error, never
// silently ignored. On failure the error lists every problem, one per
// line (each a *Problem), and the Config is nil.
//
// Every file read (the main one and each drop-in) must be a regular file
// that only root or goinetd's user can write, in folders that only they
// can write, and be at most 4 MiB with arrays and tables nested at most 8
// deep (see files.go); otherwise it is not parsed, and the problem says
// why and how to fix it.
func Load(path string) (*Config, error) {
	data, err := readConfigFile(path, true)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return Parse(data, path, filepath.Dir(abs))
}

// Parse decodes and validates data as if it were the config file named file
// in the folder dir; relative paths (program, workdir, include patterns)
// resolve against dir. It is Load without the read of the main file; the
// drop-in files its include names are read.
func Parse(data []byte, file, dir string) (*Config, error) {
	main := &problems{file: file, lines: make(map[string]int)}
	d, top := decodeFile(data, main)
	if d == nil {
		return nil, main.err()
	}
	cfg := &Config{File: file, Dir: dir, Server: Server{LogFormat: LogText, ShutdownGrace: DefaultShutdownGrace, DenyTime: DefaultDenyTime}}
	defaults := &Service{SocketUID: -1, SocketGID: -1}
	var patterns []string
	for _, key := range sortedKeys(top) {
		switch key {
		case "server":
			d.decodeTable(top[key], toml.Key{key}, serverKeys(&cfg.Server))
		case "defaults":
			d.decodeTable(top[key], toml.Key{key}, serviceKeys(defaults))
		case "include":
			main.lines[key] = d.line(toml.Key{key}, top[key])
			set := unmarshaler(func(v any) error { return parsePatterns(v, &patterns) })
			if err := d.md.PrimitiveDecode(top[key], &set); err != nil {
				main.addDecode(key, err)
			}
		case "services":
		default:
			main.lines[key] = d.line(toml.Key{key}, top[key])
			d.unknown(toml.Key{key}, topKeys)
		}
	}

	from := make(map[*Service]*where)
	byName := make(map[string]*Service)
	files := []*problems{main}
	add := func(d *decoder, top map[string]toml.Primitive, dir string) {
		services := d.table(top["services"], toml.Key{"services"})
		for _, name := range sortedKeys(services) {
			svc := defaults.clone()
			svc.Name = name
			if !d.decodeTable(services[name], toml.Key{"services", name}, serviceKeys(svc)) {
				continue
			}
			if first, ok := byName[name]; ok {
				d.ps.add(toml.Key{"services", name}.String(), "is also defined in %s", from[first].file.file)
				continue
			}
			byName[name] = svc
			cfg.Services = append(cfg.Services, svc)
			from[svc] = &where{svc: svc, file: d.ps, main: main, dir: dir}
		}
	}
	add(d, top, dir)
	for _, path := range expandIncludes(patterns, dir, main) {
		cfg.Includes = append(cfg.Includes, path)
		ps := &problems{file: path, lines: make(map[string]int)}
		files = append(files, ps)
		data, err := readConfigFile(path, false)
		if err != nil {
			ps.add("", "%v", err)
			continue
		}
		d, top := decodeFile(data, ps)
		if d == nil {
			continue
		}
		for _, key := range sortedKeys(top) {
			if key != "services" {
				ps.lines[key] = d.line(toml.Key{key}, top[key])
				ps.add(key, "only [services.NAME] tables belong in a drop-in file")
			}
		}
		add(d, top, filepath.Dir(path))
	}
	slices.SortFunc(cfg.Services, func(a, b *Service) int { return strings.Compare(a.Name, b.Name) })

	validate(cfg, main, from)
	if err := allProblems(files); err != nil {
		return nil, err
	}
	cfg.Warnings = allWarnings(files)
	return cfg, nil
}

// decodeFile parses one TOML file into its top-level keys. On a syntax
// error it records the problem and returns a nil decoder.
func decodeFile(data []byte, ps *problems) (*decoder, map[string]toml.Primitive) {
	// The parser's cost grows with the square of the nesting: bound it
	// before the parser sees the file.
	sc := scan(data)
	if sc.tooDeep > 0 {
		ps.list = append(ps.list, &Problem{File: ps.file, Line: sc.tooDeep,
			Msg: fmt.Sprintf("arrays and tables nest more than %d deep here; goinetd's keys need at most 3, so the file is not parsed", maxNesting)})
		return nil, nil
	}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		ps.addDecode("", err)
		return nil, nil
	}
	return &decoder{md: &md, ps: ps, lines: sc.lines}, top
}

// parsePatterns accepts a list of glob patterns (filepath.Match syntax).
// The valid ones are kept even if others are not, so that the files they
// name are checked too.
func parsePatterns(v any, dst *[]string) error {
	var patterns []string
	if err := parseStrings(v, &patterns); err != nil {
		return err
	}
	var bad []error
	for _, p := range patterns {
		if _, err := filepath.Match(p, ""); err != nil || p == "" {
			bad = append(bad, fmt.Errorf("%q is not a valid file pattern", p))
			continue
		}
		*dst = append(*dst, p)
	}
	return errors.Join(bad...)
}

// expandIncludes returns the files the include patterns match, each
// pattern's matches sorted, each file once. A pattern that matches nothing
// is not an error: an empty drop-in folder is normal.
func expandIncludes(patterns []string, dir string, main *problems) []string {
	var files []string
	for _, p := range patterns {
		matches, err := filepath.Glob(resolve(dir, p))
		if err != nil {
			main.add("include", "%q: %v", p, err)
			continue
		}
		for _, m := range matches {
			if !slices.Contains(files, m) {
				files = append(files, m)
			}
		}
	}
	return files
}

// clone returns a copy of s that shares no slice with it.
func (s *Service) clone() *Service {
	c := *s
	c.Args = slices.Clone(s.Args)
	c.Env = slices.Clone(s.Env)
	if s.TLS != nil { // from [defaults]: validateTLS fills in and resolves each service's own
		t := *s.TLS
		t.Certs, t.ALPN = slices.Clone(s.TLS.Certs), slices.Clone(s.TLS.ALPN)
		c.TLS = &t
	}
	return &c
}

// decoder walks a decoded file table by table, key by key, so that one bad
// value does not hide the next.
type decoder struct {
	md    *toml.MetaData
	ps    *problems
	lines map[string]int // of the keys scan saw
}

// isTable reports whether prim, the value of key, is a table, recording a
// problem if it is not. A missing table is an empty one.
func (d *decoder) isTable(prim toml.Primitive, key toml.Key) bool {
	if !d.md.IsDefined(key...) {
		return true
	}
	d.ps.lines[key.String()] = d.line(key, prim)
	isTable := unmarshaler(func(v any) error {
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("must be a table, not %s", describe(v))
		}
		return nil
	})
	if err := d.md.PrimitiveDecode(prim, &isTable); err != nil {
		d.ps.addDecode(key.String(), err)
		return false
	}
	return true
}

// table returns the keys of the table prim, the value of key, or nil after
// recording a problem if it is not a table.
func (d *decoder) table(prim toml.Primitive, key toml.Key) map[string]toml.Primitive {
	if !d.md.IsDefined(key...) || !d.isTable(prim, key) {
		return nil
	}
	var t map[string]toml.Primitive
	if err := d.md.PrimitiveDecode(prim, &t); err != nil {
		d.ps.addDecode(key.String(), err)
		return nil
	}
	return t
}

// decodeTable hands each key of the table prim to its function in keys,
// recording a problem for each bad or unknown key. It returns false if prim
// is not a table at all.
func (d *decoder) decodeTable(prim toml.Primitive, path toml.Key, keys tableKeys) bool {
	if !d.isTable(prim, path) {
		return false
	}
	t := d.table(prim, path)
	for _, name := range sortedKeys(t) {
		key := append(slices.Clone(path), name)
		d.ps.lines[key.String()] = d.line(key, t[name])
		set, ok := keys.set[name]
		if !ok {
			d.unknown(key, sortedKeys(keys.set))
			continue
		}
		// A key may have several problems (env, with a bad variable
		// each): the decoder gets the first, to find the line, and the
		// others are recorded on the same line.
		var more []error
		first := unmarshaler(func(v any) error {
			err := set(v)
			if joined, ok := err.(interface{ Unwrap() []error }); ok && len(joined.Unwrap()) > 1 {
				more = joined.Unwrap()[1:]
				return joined.Unwrap()[0]
			}
			return err
		})
		if err := d.md.PrimitiveDecode(t[name], &first); err != nil {
			line := d.ps.addDecode(key.String(), err)
			for _, err := range more {
				d.ps.list = append(d.ps.list, &Problem{File: d.ps.file, Line: line, Key: key.String(), Msg: err.Error()})
			}
		}
	}
	return true
}

// errLine is returned by the decoder used to learn a key's line.
var errLine = errors.New("line wanted")

// line returns the line of key, whose value is prim, or 0: as scan saw
// it, or else (a key in an inline table) as the TOML decoder knows it.
func (d *decoder) line(key toml.Key, prim toml.Primitive) int {
	if n, ok := d.lines[key.String()]; ok {
		return n
	}
	return d.parserLine(prim)
}

// parserLine returns the line of the key whose value is prim, or 0. The
// TOML decoder reports lines only in its errors, so ask it for one, at
// the cost of a pass over the whole file. A table that is only implied
// (by [a.b] or a dotted key a.b = 1) has no line of its own; it gets the
// first line of what it holds.
func (d *decoder) parserLine(prim toml.Primitive) int {
	fail := unmarshaler(func(any) error { return errLine })
	var pe toml.ParseError
	if err := d.md.PrimitiveDecode(prim, &fail); errors.As(err, &pe) && pe.Position.Line > 0 {
		return pe.Position.Line
	}
	var t map[string]toml.Primitive
	if d.md.PrimitiveDecode(prim, &t) != nil {
		return 0
	}
	first := 0
	for _, child := range t {
		if n := d.parserLine(child); n > 0 && (first == 0 || n < first) {
			first = n
		}
	}
	return first
}

// unknown records a key that goinetd does not read, with the known key of
// its table that it was probably meant to be.
func (d *decoder) unknown(key toml.Key, known []string) {
	name := key[len(key)-1]
	if name == "include" {
		d.ps.add(key.String(), "unknown key; include goes at the top of the file, before any [table]")
		return
	}
	if hint, ok := legacyTerms[name]; ok && (hint.key == "" || slices.Contains(known, hint.key)) {
		d.ps.add(key.String(), "unknown key; %s", hint)
		return
	}
	if guess := closestKey(name, known); guess != "" {
		d.ps.add(key.String(), "unknown key; did you mean %s?", guess)
		return
	}
	d.ps.add(key.String(), "unknown key")
}

// unmarshaler adapts a function to toml.Unmarshaler. The TOML decoder
// wraps the error it returns with the line of the key being decoded.
type unmarshaler func(any) error

func (u unmarshaler) UnmarshalTOML(v any) error { return u(v) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// describe names the TOML type of a decoded value for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		f := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(f, ".eIN") {
			f += ".0"
		}
		return "the float " + f
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		// The TOML decoder marks local dates and times by their zone name.
		switch v.Location().String() {
		case "date-local":
			return "the date " + v.Format(time.DateOnly)
		case "time-local":
			return "the time " + v.Format(time.TimeOnly)
		default:
			return "the date-time " + v.Format(time.RFC3339)
		}
	default:
		return fmt.Sprintf("a %T", v)
	}
}
