// Hello, Go: the handler form. No package clause or func main needed: Nimbus
// adds them. Create with runtime "go"; invoke with {"name": "Ada"}.
import (
	"fmt"
	"os"
)

func handler(event interface{}, context map[string]string) interface{} {
	name := "world"
	if fields, ok := event.(map[string]interface{}); ok {
		if given, ok := fields["name"].(string); ok {
			name = given
		}
	}
	fmt.Fprintf(os.Stderr, "greeting %s\n", name) // stderr is the function's log
	return map[string]interface{}{
		"message":  fmt.Sprintf("Hello, %s!", name),
		"function": context["function_name"],
	}
}
