// Renders the TEMPLATE of an Ollama Modelfile for a list of conversations the way Ollama fills a template that
// uses .Messages: the Modelfile's SYSTEM is put first when a conversation has no system message, consecutive
// messages of one role are joined with a blank line, every system message's text is also joined into .System, and
// the template sees {System, Messages, Response: ""}. Written for checking the
// Modelfiles sft writes (scripts/ollama/check_templates.py); standard library only.
//
//	go run scripts/ollama/render.go Modelfile conversations.json
//
// conversations.json: [[{"role": "user", "content": "…"}, …], …]. Prints a JSON list of the rendered prompts.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// collate merges consecutive messages of one role and collects the system messages, as Ollama does.
func collate(messages []message) (string, []*message) {
	var system []string
	var collated []*message
	for i := range messages {
		m := messages[i]
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		if n := len(collated); n > 0 && collated[n-1].Role == m.Role {
			collated[n-1].Content += "\n\n" + m.Content
		} else {
			collated = append(collated, &m)
		}
	}
	return strings.Join(system, "\n\n"), collated
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: render Modelfile conversations.json")
		os.Exit(2)
	}
	modelfile, err := os.ReadFile(os.Args[1])
	check(err)
	text := string(modelfile)
	start := strings.Index(text, "TEMPLATE \"\"\"")
	if start < 0 {
		check(fmt.Errorf("%s has no TEMPLATE", os.Args[1]))
	}
	body := text[start+len("TEMPLATE \"\"\""):]
	end := strings.Index(body, "\"\"\"")
	if end < 0 {
		check(fmt.Errorf("%s: TEMPLATE is not closed", os.Args[1]))
	}
	tmpl, err := template.New("TEMPLATE").Parse(body[:end])
	defaultSystem := ""
	if at := strings.Index(text, "\nSYSTEM \"\"\""); at >= 0 {
		rest := text[at+len("\nSYSTEM \"\"\""):]
		defaultSystem = rest[:strings.Index(rest, "\"\"\"")]
	}
	check(err)
	raw, err := os.ReadFile(os.Args[2])
	check(err)
	var conversations [][]message
	check(json.Unmarshal(raw, &conversations))
	rendered := []string{}
	for _, conversation := range conversations {
		if defaultSystem != "" && (len(conversation) == 0 || conversation[0].Role != "system") {
			conversation = append([]message{{Role: "system", Content: defaultSystem}}, conversation...)
		}
		system, messages := collate(conversation)
		var out strings.Builder
		check(tmpl.Execute(&out, map[string]any{"System": system, "Messages": messages, "Response": ""}))
		rendered = append(rendered, out.String())
	}
	check(json.NewEncoder(os.Stdout).Encode(rendered))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
