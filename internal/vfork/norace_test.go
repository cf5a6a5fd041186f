//go:build !race

package vfork

const raceEnabled = false
