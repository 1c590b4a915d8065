// promparse reads Prometheus text exposition (format 0.0.4) on stdin, parses
// it with the Prometheus project's own parser (github.com/prometheus/common
// expfmt, legacy name validation, as Prometheus scrapes it) and prints the
// families as JSON. A page the parser refuses exits 1 with the parser's error
// on stderr. The tests use it so that /metrics is checked by the real thing.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// number keeps NaN and ±Inf, which JSON numbers cannot carry, as strings.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return json.Marshal(strconv.FormatFloat(f, 'g', -1, 64))
	}
	return json.Marshal(f)
}

type bucket struct {
	UpperBound number `json:"le"`
	Count      uint64 `json:"count"`
}

type metric struct {
	Labels  map[string]string `json:"labels"`
	Value   *number           `json:"value,omitempty"`
	Count   *uint64           `json:"count,omitempty"`
	Sum     *number           `json:"sum,omitempty"`
	Buckets []bucket          `json:"buckets,omitempty"`
}

type family struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Help    string   `json:"help"`
	Metrics []metric `json:"metrics"`
}

func main() {
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := make([]family, 0, len(families))
	for _, mf := range families {
		out = append(out, convert(mf))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func convert(mf *dto.MetricFamily) family {
	f := family{Name: mf.GetName(), Type: typeName(mf.GetType()), Help: mf.GetHelp()}
	for _, m := range mf.GetMetric() {
		out := metric{Labels: map[string]string{}}
		for _, pair := range m.GetLabel() {
			out.Labels[pair.GetName()] = pair.GetValue()
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			out.Value = ptr(number(m.GetCounter().GetValue()))
		case dto.MetricType_GAUGE:
			out.Value = ptr(number(m.GetGauge().GetValue()))
		case dto.MetricType_UNTYPED:
			out.Value = ptr(number(m.GetUntyped().GetValue()))
		case dto.MetricType_HISTOGRAM:
			h := m.GetHistogram()
			out.Count = ptr(h.GetSampleCount())
			out.Sum = ptr(number(h.GetSampleSum()))
			for _, b := range h.GetBucket() {
				out.Buckets = append(out.Buckets, bucket{number(b.GetUpperBound()), b.GetCumulativeCount()})
			}
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			out.Count = ptr(s.GetSampleCount())
			out.Sum = ptr(number(s.GetSampleSum()))
		}
		f.Metrics = append(f.Metrics, out)
	}
	return f
}

func typeName(t dto.MetricType) string {
	switch t {
	case dto.MetricType_COUNTER:
		return "counter"
	case dto.MetricType_GAUGE:
		return "gauge"
	case dto.MetricType_HISTOGRAM:
		return "histogram"
	case dto.MetricType_SUMMARY:
		return "summary"
	default:
		return "untyped"
	}
}

func ptr[T any](v T) *T { return &v }
