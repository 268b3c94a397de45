package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// unknownFields walks the YAML tree along the Config type and reports every key that is
// not a field (all of them at once, with positions and the valid names), so a typo never
// silently becomes a default.
func unknownFields(name string, f *ast.File) []error {
	var errs []error
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			walkNode(name, doc.Body, reflect.TypeOf(Config{}), "", &errs)
		}
	}
	return errs
}

var durationType = reflect.TypeOf(Duration{})

func walkNode(file string, n ast.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n := n.(type) {
	case *ast.AnchorNode:
		walkNode(file, n.Value, t, path, errs)
	case *ast.TagNode:
		walkNode(file, n.Value, t, path, errs)
	case *ast.MappingNode:
		if t.Kind() == reflect.Struct && t != durationType {
			for _, mv := range n.Values {
				walkMember(file, mv, t, path, errs)
			}
		}
	case *ast.MappingValueNode:
		if t.Kind() == reflect.Struct && t != durationType {
			walkMember(file, n, t, path, errs)
		}
	case *ast.SequenceNode:
		if t.Kind() == reflect.Slice {
			for i, e := range n.Values {
				walkNode(file, e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	}
}

func walkMember(file string, mv *ast.MappingValueNode, t reflect.Type, path string, errs *[]error) {
	if mv.Key == nil || mv.Key.GetToken() == nil {
		return
	}
	key := mv.Key.GetToken().Value
	if key == "<<" { // merge key: its values are checked where they are defined
		return
	}
	var valid []string
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || tag == "-" || tag == "" {
			continue
		}
		if tag == key {
			walkNode(file, mv.Value, sf.Type, joinPath(path, key), errs)
			return
		}
		valid = append(valid, tag)
	}
	pos := mv.Key.GetToken().Position
	*errs = append(*errs, &Error{
		File: file, Line: pos.Line, Column: pos.Column, Field: joinPath(path, key),
		Message: fmt.Sprintf("unknown field (valid: %s)", strings.Join(valid, ", ")),
	})
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
