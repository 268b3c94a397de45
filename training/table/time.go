package table

import "time"

// timeParse parses s with layout and returns Unix milliseconds.
func timeParse(layout, s string) (int64, error) {
	t, err := time.Parse(layout, s)
	if err != nil {
		return 0, err
	}
	return t.UnixMilli(), nil
}
