package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// Charts are small inline SVGs drawn on the server: no script, no library. Each is an
// <svg role="img"> with a <title> and <desc> (aria-labelledby), a data-chart name and a
// data-points count; each data mark has a <title> (the browser's tooltip) with its value.
// Colours come from CSS classes (style.css), so the page's theme owns them.

// series is one line, area or set of bars of a plot.
type series struct {
	Name  string
	Class string // s1, s2, ... (CSS colour)
	Kind  string // "line", "area" or "bar"
	Y     []float64
	Tips  []string // tooltip per point (optional)
}

// marker is a vertical rule at a numeric x (the current policy's threshold or budget).
type marker struct {
	X     float64
	Label string
}

// plot is an x/y chart: categorical x (Cat) or numeric x (X).
type plot struct {
	ID, Name, Title, Desc string
	W, H                  float64
	Cat                   []string
	X                     []float64
	XFmt, YFmt            func(float64) string
	Series                []series
	Marker                *marker
}

const (
	padL, padR, padT, padB = 56.0, 14.0, 14.0, 30.0
)

func esc(s string) string { return html.EscapeString(s) }

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi < lo {
		lo, hi = hi, lo
	}
	if hi == lo {
		if hi == 0 {
			hi = 1
		} else {
			lo, hi = math.Min(0, lo), math.Max(0, hi)
			if lo == hi {
				hi = lo + 1
			}
		}
	}
	raw := (hi - lo) / float64(max(1, n))
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	start := math.Floor(lo/step) * step
	var out []float64
	for v := start; v <= hi+step*0.5 && len(out) < 20; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	if out[len(out)-1] < hi {
		out = append(out, out[len(out)-1]+step)
	}
	return out
}

func (p *plot) points() int {
	n := 0
	for _, s := range p.Series {
		n += len(s.Y)
	}
	return n
}

func svgOpen(b *strings.Builder, id, name, title, desc string, w, h float64, points int) {
	fmt.Fprintf(b, `<svg class="chart" id="%s" data-chart="%s" data-points="%d" viewBox="0 0 %s %s" role="img" aria-labelledby="%s-t %s-d" preserveAspectRatio="xMidYMid meet">`,
		esc(id), esc(name), points, f1(w), f1(h), esc(id), esc(id))
	fmt.Fprintf(b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, esc(id), esc(title), esc(id), esc(desc))
}

// SVG renders the plot.
func (p *plot) SVG() template.HTML {
	var b strings.Builder
	w, h := p.W, p.H
	if w == 0 {
		w = 640
	}
	if h == 0 {
		h = 220
	}
	pw, ph := w-padL-padR, h-padT-padB
	svgOpen(&b, p.ID, p.Name, p.Title, p.Desc, w, h, p.points())
	n := len(p.Cat)
	if p.Cat == nil {
		n = len(p.X)
	}
	if n == 0 || p.points() == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%s" y="%s" text-anchor="middle">No data in this range</text></svg>`, f1(w/2), f1(h/2))
		return template.HTML(b.String())
	}
	ymin, ymax := 0.0, 0.0
	for _, s := range p.Series {
		for _, y := range s.Y {
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	ticks := niceTicks(ymin, ymax, 4)
	y0, y1 := ticks[0], ticks[len(ticks)-1]
	yPos := func(v float64) float64 { return padT + ph - (v-y0)/(y1-y0)*ph }
	var xPos func(i int) float64
	band := pw / float64(n)
	if p.Cat != nil {
		xPos = func(i int) float64 { return padL + band*(float64(i)+0.5) }
	} else {
		x0, x1 := p.X[0], p.X[len(p.X)-1]
		for _, x := range p.X {
			x0, x1 = math.Min(x0, x), math.Max(x1, x)
		}
		if x1 == x0 {
			x1 = x0 + 1
		}
		xv := func(v float64) float64 { return padL + (v-x0)/(x1-x0)*pw }
		xPos = func(i int) float64 { return xv(p.X[i]) }
		// Numeric x ticks.
		b.WriteString(`<g class="axis x">`)
		for _, t := range niceTicks(x0, x1, 5) {
			if t < x0-1e-9 || t > x1+1e-9 {
				continue
			}
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`, f1(xv(t)), f1(h-8), esc(p.XFmt(t)))
		}
		b.WriteString(`</g>`)
		if p.Marker != nil {
			mx := xv(math.Max(x0, math.Min(x1, p.Marker.X)))
			fmt.Fprintf(&b, `<g class="marker"><line x1="%s" x2="%s" y1="%s" y2="%s"/><text x="%s" y="%s" text-anchor="%s">%s</text></g>`,
				f1(mx), f1(mx), f1(padT), f1(padT+ph), f1(mx+4), f1(padT+10), "start", esc(p.Marker.Label))
		}
	}
	// Grid and y axis.
	b.WriteString(`<g class="grid">`)
	for _, t := range ticks {
		y := yPos(t)
		cls := ""
		if t == 0 {
			cls = ` class="zero"`
		}
		fmt.Fprintf(&b, `<line%s x1="%s" x2="%s" y1="%s" y2="%s"/>`, cls, f1(padL), f1(padL+pw), f1(y), f1(y))
	}
	b.WriteString(`</g><g class="axis y">`)
	for _, t := range ticks {
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end">%s</text>`, f1(padL-6), f1(yPos(t)+4), esc(p.YFmt(t)))
	}
	b.WriteString(`</g>`)
	if p.Cat != nil {
		b.WriteString(`<g class="axis x">`)
		every := max(1, (n+6)/7)
		for i := 0; i < n; i += every {
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`, f1(xPos(i)), f1(h-8), esc(p.Cat[i]))
		}
		b.WriteString(`</g>`)
	}
	// Bars first, then areas and lines on top.
	nb := 0
	for _, s := range p.Series {
		if s.Kind == "bar" {
			nb++
		}
	}
	bi := 0
	for _, s := range p.Series {
		if s.Kind != "bar" {
			continue
		}
		bw := band * 0.72 / float64(nb)
		fmt.Fprintf(&b, `<g class="bars %s" data-series="%s">`, esc(s.Class), esc(s.Name))
		for i, y := range s.Y {
			x := xPos(i) - band*0.36 + float64(bi)*bw
			top, bot := yPos(math.Max(y, 0)), yPos(math.Min(y, 0))
			fmt.Fprintf(&b, `<rect class="mark" x="%s" y="%s" width="%s" height="%s" rx="1.5"><title>%s</title></rect>`,
				f1(x), f1(top), f1(math.Max(bw-1, 1)), f1(math.Max(bot-top, 0.5)), esc(tip(p, s, i)))
		}
		b.WriteString(`</g>`)
		bi++
	}
	for _, s := range p.Series {
		if s.Kind == "bar" {
			continue
		}
		var path strings.Builder
		for i, y := range s.Y {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%s,%s", cmd, f1(xPos(i)), f1(yPos(y)))
		}
		fmt.Fprintf(&b, `<g class="line %s" data-series="%s">`, esc(s.Class), esc(s.Name))
		if s.Kind == "area" && len(s.Y) > 1 {
			fmt.Fprintf(&b, `<path class="area" d="%sL%s,%sL%s,%sZ"/>`, path.String(),
				f1(xPos(len(s.Y)-1)), f1(yPos(math.Max(0, y0))), f1(xPos(0)), f1(yPos(math.Max(0, y0))))
		}
		fmt.Fprintf(&b, `<path class="stroke" d="%s"/>`, path.String())
		r := 3.0
		if len(s.Y) > 40 {
			r = 1.6
		}
		for i, y := range s.Y {
			fmt.Fprintf(&b, `<circle class="mark" cx="%s" cy="%s" r="%s"><title>%s</title></circle>`,
				f1(xPos(i)), f1(yPos(y)), f1(r), esc(tip(p, s, i)))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func tip(p *plot, s series, i int) string {
	if i < len(s.Tips) && s.Tips[i] != "" {
		return s.Tips[i]
	}
	x := ""
	if p.Cat != nil {
		x = p.Cat[i]
	} else {
		x = p.XFmt(p.X[i])
	}
	return fmt.Sprintf("%s: %s %s", x, p.YFmt(s.Y[i]), s.Name)
}

// bar is one row of a horizontal bar chart.
type bar struct {
	Label string
	Value float64 // bar length, in the chart's unit
	Text  string  // printed after the bar
	Tip   string
	Class string
}

// hbars renders horizontal bars scaled to maxV (0: the largest value).
func hbars(id, name, title, desc string, rows []bar, maxV float64) template.HTML {
	var b strings.Builder
	const w, rowH, labelW, textW = 640.0, 30.0, 150.0, 150.0
	h := rowH*float64(len(rows)) + 8
	if len(rows) == 0 {
		h = 60
	}
	svgOpen(&b, id, name, title, desc, w, h, len(rows))
	if len(rows) == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%s" y="34" text-anchor="middle">No data in this range</text></svg>`, f1(w/2))
		return template.HTML(b.String())
	}
	if maxV <= 0 {
		for _, r := range rows {
			maxV = math.Max(maxV, r.Value)
		}
	}
	if maxV <= 0 {
		maxV = 1
	}
	bw := w - labelW - textW
	for i, r := range rows {
		y := 4 + float64(i)*rowH
		l := math.Max(0, r.Value) / maxV * bw
		cls := r.Class
		if cls == "" {
			cls = "s1"
		}
		fmt.Fprintf(&b, `<g class="hbar %s"><text class="label" x="%s" y="%s" text-anchor="end">%s</text>`,
			esc(cls), f1(labelW-10), f1(y+rowH/2+4), esc(r.Label))
		fmt.Fprintf(&b, `<rect class="track" x="%s" y="%s" width="%s" height="%s" rx="3"/>`, f1(labelW), f1(y+5), f1(bw), f1(rowH-10))
		fmt.Fprintf(&b, `<rect class="mark" x="%s" y="%s" width="%s" height="%s" rx="3"><title>%s</title></rect>`,
			f1(labelW), f1(y+5), f1(math.Max(l, 1)), f1(rowH-10), esc(r.Tip))
		fmt.Fprintf(&b, `<text class="value" x="%s" y="%s">%s</text></g>`, f1(labelW+bw+8), f1(y+rowH/2+4), esc(r.Text))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// interval is one row of a forest plot: an estimate with its confidence interval.
type interval struct {
	Label       string
	Est, Lo, Hi float64
	Text, Tip   string
	Significant bool
	Positive    bool
}

// forest renders estimates with confidence-interval whiskers around a zero line.
func forest(id, name, title, desc string, rows []interval, xfmt func(float64) string) template.HTML {
	var b strings.Builder
	const w, rowH, labelW, textW, axisH = 1200.0, 34.0, 140.0, 190.0, 26.0
	h := rowH*float64(len(rows)) + axisH + 6
	svgOpen(&b, id, name, title, desc, w, h, len(rows))
	if len(rows) == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%s" y="20" text-anchor="middle">No data in this range</text></svg>`, f1(w/2))
		return template.HTML(b.String())
	}
	lo, hi := 0.0, 0.0
	for _, r := range rows {
		lo, hi = math.Min(lo, r.Lo), math.Max(hi, r.Hi)
		lo, hi = math.Min(lo, r.Est), math.Max(hi, r.Est)
	}
	ticks := niceTicks(lo, hi, 5)
	x0, x1 := ticks[0], ticks[len(ticks)-1]
	pw := w - labelW - textW
	xv := func(v float64) float64 { return labelW + (v-x0)/(x1-x0)*pw }
	top, bot := 4.0, 4+rowH*float64(len(rows))
	b.WriteString(`<g class="grid">`)
	for _, t := range ticks {
		cls := ""
		if t == 0 {
			cls = ` class="zero"`
		}
		fmt.Fprintf(&b, `<line%s x1="%s" x2="%s" y1="%s" y2="%s"/>`, cls, f1(xv(t)), f1(xv(t)), f1(top), f1(bot))
	}
	b.WriteString(`</g><g class="axis x">`)
	for _, t := range ticks {
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`, f1(xv(t)), f1(bot+16), esc(xfmt(t)))
	}
	b.WriteString(`</g>`)
	for i, r := range rows {
		y := top + float64(i)*rowH + rowH/2
		cls := "ns"
		switch {
		case r.Significant && r.Positive:
			cls = "pos"
		case r.Significant:
			cls = "neg"
		}
		fmt.Fprintf(&b, `<g class="ci %s"><text class="label" x="%s" y="%s" text-anchor="end">%s</text>`,
			cls, f1(labelW-10), f1(y+4), esc(r.Label))
		fmt.Fprintf(&b, `<line class="whisker" x1="%s" x2="%s" y1="%s" y2="%s"/>`, f1(xv(r.Lo)), f1(xv(r.Hi)), f1(y), f1(y))
		for _, x := range []float64{r.Lo, r.Hi} {
			fmt.Fprintf(&b, `<line class="whisker" x1="%s" x2="%s" y1="%s" y2="%s"/>`, f1(xv(x)), f1(xv(x)), f1(y-6), f1(y+6))
		}
		fmt.Fprintf(&b, `<circle class="mark" cx="%s" cy="%s" r="5.5"><title>%s</title></circle>`, f1(xv(r.Est)), f1(y), esc(r.Tip))
		fmt.Fprintf(&b, `<text class="value" x="%s" y="%s">%s</text></g>`, f1(labelW+pw+10), f1(y+4), esc(r.Text))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
