package config

// closestKey returns the key of known that name, an unknown key, was
// probably meant to be, or "": one at most two edits away, or one of which
// name is an abbreviation (its letters in order, as max_per_src is of
// max_per_source). The nearest wins; ties go to the first in known.
func closestKey(name string, known []string) string {
	best, bestDist := "", 0
	for _, k := range known {
		d := editDistance(name, k)
		if d > 2 && !abbreviates(name, k) {
			continue
		}
		if best == "" || d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// abbreviates reports whether short, of at least 4 bytes, starts as long
// does and holds its other bytes in order within long.
func abbreviates(short, long string) bool {
	if len(short) < 4 || len(short) >= len(long) || short[0] != long[0] {
		return false
	}
	i := 0
	for j := 0; j < len(long) && i < len(short); j++ {
		if short[i] == long[j] {
			i++
		}
	}
	return i == len(short)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
