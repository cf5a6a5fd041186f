package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads, decodes and validates the config file at path.
//
// Decoding is strict: a key goinetd does not know is an error, and a key
// whose behaviour is not implemented yet is rejected as "not supported yet",
// never silently ignored. On failure the error lists every problem, one per
// line (each a *Problem), and the Config is nil.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return Parse(data, path, filepath.Dir(abs))
}

// Parse decodes and validates data as if it were the config file named file
// in the folder dir; relative program and workdir paths resolve against dir.
// It is Load without the read, for tests and fuzzing.
func Parse(data []byte, file, dir string) (*Config, error) {
	ps := &problems{file: file, lines: make(map[string]int)}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		ps.addDecode("", err)
		return nil, ps.err()
	}
	d := &decoder{md: &md, ps: ps}
	cfg := &Config{File: file, Dir: dir, Server: Server{LogFormat: LogText}}
	defaults := &Service{}
	for _, key := range sortedKeys(top) {
		switch key {
		case "server":
			d.decodeTable(top[key], toml.Key{key}, serverKeys(&cfg.Server))
		case "defaults":
			d.decodeTable(top[key], toml.Key{key}, serviceKeys(defaults))
		case "services":
		default:
			d.ps.lines[key] = d.line(top[key])
			d.unknown(toml.Key{key}, topNotYet)
		}
	}
	services := d.table(top["services"], toml.Key{"services"})
	for _, name := range sortedKeys(services) {
		svc := defaults.clone()
		svc.Name = name
		d.decodeTable(services[name], toml.Key{"services", name}, serviceKeys(svc))
		cfg.Services = append(cfg.Services, svc)
	}
	validate(cfg, ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// clone returns a copy of s that shares no slice with it.
func (s *Service) clone() *Service {
	c := *s
	c.Args = slices.Clone(s.Args)
	c.Env = slices.Clone(s.Env)
	return &c
}

// decoder walks a decoded file table by table, key by key, so that one bad
// value does not hide the next.
type decoder struct {
	md *toml.MetaData
	ps *problems
}

// table returns the keys of the table prim, or nil after recording a
// problem if prim is not a table. A missing table is an empty one.
func (d *decoder) table(prim toml.Primitive, key toml.Key) map[string]toml.Primitive {
	if !d.md.IsDefined(key...) {
		return nil
	}
	d.ps.lines[key.String()] = d.line(prim)
	isTable := unmarshaler(func(v any) error {
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("must be a table, not %s", describe(v))
		}
		return nil
	})
	if err := d.md.PrimitiveDecode(prim, &isTable); err != nil {
		d.ps.addDecode(key.String(), err)
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
// recording a problem for each bad or unknown key.
func (d *decoder) decodeTable(prim toml.Primitive, path toml.Key, keys tableKeys) {
	t := d.table(prim, path)
	for _, name := range sortedKeys(t) {
		key := append(slices.Clone(path), name)
		d.ps.lines[key.String()] = d.line(t[name])
		set, ok := keys.set[name]
		if !ok {
			d.unknown(key, keys.notYet)
			continue
		}
		if err := d.md.PrimitiveDecode(t[name], (*unmarshaler)(&set)); err != nil {
			d.ps.addDecode(key.String(), err)
		}
	}
}

// errLine is returned by the decoder used to learn a key's line.
var errLine = errors.New("line wanted")

// line returns the line of the key whose value is prim, or 0. The TOML
// decoder reports lines only in its errors, so ask it for one.
func (d *decoder) line(prim toml.Primitive) int {
	fail := unmarshaler(func(any) error { return errLine })
	var pe toml.ParseError
	if err := d.md.PrimitiveDecode(prim, &fail); errors.As(err, &pe) {
		return pe.Position.Line
	}
	return 0
}

// unknown records a key that goinetd does not read, saying so if a later
// version will.
func (d *decoder) unknown(key toml.Key, notYet []string) {
	if slices.Contains(notYet, key[len(key)-1]) {
		d.ps.add(key.String(), "not supported yet")
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
		return fmt.Sprintf("the float %v", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return strings.TrimPrefix(fmt.Sprintf("a %T", v), "a time.")
	}
}
