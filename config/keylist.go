package config

import "slices"

// Keys returns every key a config file accepts, sorted, each once:
// include (the top level's one key that is not a table), the keys of
// [server], and the keys of a service (which [defaults] takes too). The docs test checks that
// inetd.toml(5), examples/inetd.toml and the README's cheat sheet name
// each of them, so a key added to serverKeys or serviceKeys is documented
// or fails that test.
func Keys() []string {
	keys := []string{"include"}
	keys = append(keys, sortedKeys(serverKeys(&Server{}).set)...)
	keys = append(keys, sortedKeys(serviceKeys(&Service{}).set)...)
	slices.Sort(keys)
	return slices.Compact(keys)
}
