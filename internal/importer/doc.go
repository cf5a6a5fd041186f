// Package importer converts inetd.conf and xinetd configurations into one
// inetd.toml: the engine of `goinetd import`.
//
// It is one package, not a parser package per format and a converter,
// because both formats meet in one place: a service, described by the
// settings goinetd has (service.go), that carries the comments explaining
// where it came from and what could not be carried over. inetd.go and
// xinetd.go read their format into services; import.go finds the files,
// merges a tcp and a tcp6 line into one service, moves the settings every
// service shares into [defaults], and names the services; toml.go writes
// the result. Nothing here binds, runs or checks: the output is text that
// `goinetd check` (package config) validates like any other file, so that
// the rules of what a valid config is keep their one home.
//
// The rules of a conversion:
//   - Nothing is dropped silently: what cannot be expressed is written as a
//     "# not converted:" comment where it belongs, saying why and what to
//     do instead, and listed in Result.NotConverted.
//   - The old semantics are kept where goinetd's defaults differ, and the
//     comment above the key says so: a handler's stderr is the connection
//     (stderr = "socket"), and xinetd's and inetd's limits map to the
//     nearest goinetd key with the difference spelt out.
//   - A setting that would be unsafe when enabled is not written enabled:
//     UDP echo and chargen (reflection) are written commented out.
//   - Every key written is one of config's keys: keyOrder lists them in the
//     order they are written, and TestKeysAreConfigKeys checks the list
//     against config.ServiceKeys, so config stays the one home of the names.
//   - A service the import cannot place safely is written disabled (a host
//     name where an address or a rule belongs) or commented out (not
//     convertible, or a UDP reflector), never served wider than before.
package importer
