//go:build race

package vfork

const raceEnabled = true
