using System.Globalization;
using System.Text.Json;

namespace AgentLab.LabService.Orchestration.Tools;

/// <summary>
/// <c>calculator</c>: evaluates an arithmetic expression with a recursive-descent parser over a tokenizer (never
/// eval, DataTable.Compute or a script engine: the model's text is data, not code). Positions in errors are 0-based
/// character offsets into the expression.
/// </summary>
public sealed class CalculatorTool : ILabTool
{
    public const string ToolName = "calculator";
    public const int MaxLength = 500;
    public const int MaxDepth = 50;

    private static readonly JsonElement Schema = ToolArguments.Schema("""
        {"type":"object","properties":{"expression":{"type":"string","description":"An arithmetic expression, e.g. (2 + 3) * sqrt(16) / 4 ^ 2. Operators + - * / % ^; functions sqrt abs min max round floor ceil ln log10 sin cos tan (radians); constants pi e."}},"required":["expression"]}
        """);

    public string Name => ToolName;

    public string Description =>
        "Evaluates an arithmetic expression exactly and returns the number. Use it for any calculation instead of doing arithmetic yourself.";

    public JsonElement ParametersSchema => Schema;

    public ValueTask<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return ValueTask.FromResult(ToolArguments.TryGetString(arguments, "expression", out var expression, out var error)
            ? Evaluate(expression)
            : error!);
    }

    /// <summary>Evaluates <paramref name="expression"/>: the result formatted invariantly with up to 12 significant digits, or an error.</summary>
    public static ToolResult Evaluate(string expression)
    {
        if (string.IsNullOrWhiteSpace(expression))
            return ToolResult.Error("expression is empty; send an arithmetic expression such as \"2 * (3 + 4)\"");
        if (expression.Length > MaxLength)
            return ToolResult.Error($"expression is too long ({expression.Length} characters; at most {MaxLength})");
        try
        {
            var value = new Parser(Tokenizer.Tokenize(expression)).ParseAll();
            return ToolResult.Success(Format(value));
        }
        catch (CalculatorException ex)
        {
            return ToolResult.Error(ex.Message);
        }
    }

    /// <summary>Invariant, up to 12 significant digits (hides binary noise: 0.1 + 0.2 is 0.3), no negative zero.</summary>
    public static string Format(double value) =>
        value == 0 ? "0" : value.ToString("G12", CultureInfo.InvariantCulture);

    private sealed class CalculatorException(string message) : Exception(message);

    private enum TokenKind { Number, Name, Plus, Minus, Star, Slash, Percent, Caret, LeftParen, RightParen, Comma, End }

    private readonly record struct Token(TokenKind Kind, int Position, string Text, double Number = 0);

    private static class Tokenizer
    {
        public static List<Token> Tokenize(string s)
        {
            var tokens = new List<Token>();
            var i = 0;
            while (i < s.Length)
            {
                var c = s[i];
                if (char.IsWhiteSpace(c))
                {
                    i++;
                    continue;
                }
                if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1])))
                {
                    tokens.Add(ReadNumber(s, ref i));
                    continue;
                }
                if (char.IsAsciiLetter(c) || c == '_')
                {
                    var start = i;
                    while (i < s.Length && (char.IsAsciiLetterOrDigit(s[i]) || s[i] == '_'))
                        i++;
                    tokens.Add(new Token(TokenKind.Name, start, s[start..i]));
                    continue;
                }
                TokenKind? kind = c switch
                {
                    '+' => TokenKind.Plus,
                    '-' or '\u2212' => TokenKind.Minus,   // U+2212 MINUS SIGN, which models copy from formatted text
                    '*' or '\u00D7' => TokenKind.Star,
                    '/' or '\u00F7' => TokenKind.Slash,
                    '%' => TokenKind.Percent,
                    '^' => TokenKind.Caret,
                    '(' => TokenKind.LeftParen,
                    ')' => TokenKind.RightParen,
                    ',' => TokenKind.Comma,
                    _ => null,
                };
                if (kind is null)
                    throw new CalculatorException($"unexpected character '{c}' at {i}; allowed: numbers, + - * / % ^ ( ) , and function names");
                tokens.Add(new Token(kind.Value, i, c.ToString()));
                i++;
            }
            tokens.Add(new Token(TokenKind.End, s.Length, ""));
            return tokens;
        }

        private static Token ReadNumber(string s, ref int i)
        {
            var start = i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
                i++;
            if (i < s.Length && s[i] == '.')
            {
                i++;
                while (i < s.Length && char.IsAsciiDigit(s[i]))
                    i++;
            }
            // An exponent only when digits follow: "2e" is 2 then the constant e (rejected by the parser), not a bad number.
            if (i < s.Length && (s[i] is 'e' or 'E'))
            {
                var j = i + 1;
                if (j < s.Length && s[j] is '+' or '-')
                    j++;
                if (j < s.Length && char.IsAsciiDigit(s[j]))
                {
                    i = j;
                    while (i < s.Length && char.IsAsciiDigit(s[i]))
                        i++;
                }
            }
            if (i < s.Length && s[i] == '.')
                throw new CalculatorException($"unexpected '.' at {i}: a number has at most one decimal point");
            var text = s[start..i];
            var value = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
            if (!double.IsFinite(value))
                throw new CalculatorException($"number '{text}' at {start} is too large");
            return new Token(TokenKind.Number, start, text, value);
        }
    }

    private sealed class Parser(List<Token> tokens)
    {
        private static readonly string KnownFunctions = "sqrt, abs, min, max, round, floor, ceil, ln, log10, sin, cos, tan";
        private int _index;
        private int _depth;

        private Token Current => tokens[_index];

        public double ParseAll()
        {
            var value = ParseAdditive();
            if (Current.Kind != TokenKind.End)
                throw Unexpected(Current);
            return value;
        }

        // additive := multiplicative (('+' | '-') multiplicative)*
        private double ParseAdditive()
        {
            var left = ParseMultiplicative();
            while (Current.Kind is TokenKind.Plus or TokenKind.Minus)
            {
                var op = Next();
                var right = ParseMultiplicative();
                left = Finite(op.Kind == TokenKind.Plus ? left + right : left - right, op);
            }
            return left;
        }

        // multiplicative := unary (('*' | '/' | '%') unary)*
        private double ParseMultiplicative()
        {
            var left = ParseUnary();
            while (Current.Kind is TokenKind.Star or TokenKind.Slash or TokenKind.Percent)
            {
                var op = Next();
                var right = ParseUnary();
                if (op.Kind != TokenKind.Star && right == 0)
                    throw new CalculatorException($"{(op.Kind == TokenKind.Slash ? "division" : "modulo")} by zero at {op.Position}");
                left = Finite(op.Kind switch
                {
                    TokenKind.Star => left * right,
                    TokenKind.Slash => left / right,
                    _ => left % right,
                }, op);
            }
            return left;
        }

        // unary := ('-' | '+') unary | power. Below '^' on purpose: -2^2 is -(2^2) = -4, as in mathematics.
        private double ParseUnary()
        {
            if (Current.Kind is TokenKind.Minus or TokenKind.Plus)
            {
                var op = Next();
                var operand = ParseUnary();
                return op.Kind == TokenKind.Minus ? -operand : operand;
            }
            return ParsePower();
        }

        // power := primary ('^' unary)?  — right-associative through the recursion: 2^3^2 = 2^9.
        private double ParsePower()
        {
            var b = ParsePrimary();
            if (Current.Kind != TokenKind.Caret)
                return b;
            var op = Next();
            var exponent = ParseUnary();
            var result = Math.Pow(b, exponent);
            if (double.IsNaN(result))
                throw new CalculatorException($"{Format(b)} ^ {Format(exponent)} at {op.Position} is not a real number");
            return Finite(result, op);
        }

        // primary := number | constant | function '(' args ')' | '(' additive ')'
        private double ParsePrimary()
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.Number:
                    Next();
                    return token.Number;
                case TokenKind.LeftParen:
                    Next();
                    Enter(token);
                    var inner = ParseAdditive();
                    Expect(TokenKind.RightParen, "')'");
                    _depth--;
                    return inner;
                case TokenKind.Name:
                    Next();
                    return Current.Kind == TokenKind.LeftParen ? ParseCall(token) : Constant(token);
                default:
                    throw Unexpected(token);
            }
        }

        private double ParseCall(Token name)
        {
            var open = Next();
            Enter(open);
            var function = name.Text.ToLowerInvariant();
            if (!IsKnownFunction(function))
                throw new CalculatorException($"unknown function '{name.Text}' at {name.Position}; known: {KnownFunctions}");
            var args = new List<double>();
            if (Current.Kind != TokenKind.RightParen)
            {
                args.Add(ParseAdditive());
                while (Current.Kind == TokenKind.Comma)
                {
                    Next();
                    args.Add(ParseAdditive());
                }
            }
            Expect(TokenKind.RightParen, "',' or ')'");
            _depth--;
            return Finite(Apply(function, name, args), name);
        }

        private static bool IsKnownFunction(string f) =>
            f is "sqrt" or "abs" or "min" or "max" or "round" or "floor" or "ceil" or "ln" or "log10" or "sin" or "cos" or "tan";

        private static double Apply(string f, Token name, List<double> args)
        {
            switch (f)
            {
                case "min" or "max":
                    if (args.Count == 0)
                        throw new CalculatorException($"{f} at {name.Position} needs at least one argument");
                    return f == "min" ? args.Min() : args.Max();
                case "round":
                    if (args.Count is < 1 or > 2)
                        throw new CalculatorException($"round at {name.Position} takes 1 or 2 arguments (value, digits), got {args.Count}");
                    if (args.Count == 1)
                        return Math.Round(args[0], MidpointRounding.AwayFromZero);
                    if (args[1] != Math.Floor(args[1]) || args[1] is < 0 or > 15)
                        throw new CalculatorException($"round at {name.Position}: digits must be a whole number from 0 to 15, got {Format(args[1])}");
                    return Math.Round(args[0], (int)args[1], MidpointRounding.AwayFromZero);
            }
            if (args.Count != 1)
                throw new CalculatorException($"{f} at {name.Position} takes exactly 1 argument, got {args.Count}");
            var x = args[0];
            return f switch
            {
                "sqrt" => x >= 0 ? Math.Sqrt(x) : throw new CalculatorException($"sqrt of a negative number ({Format(x)}) at {name.Position}"),
                "abs" => Math.Abs(x),
                "floor" => Math.Floor(x),
                "ceil" => Math.Ceiling(x),
                "ln" => x > 0 ? Math.Log(x) : throw new CalculatorException($"ln needs a positive number, got {Format(x)} at {name.Position}"),
                "log10" => x > 0 ? Math.Log10(x) : throw new CalculatorException($"log10 needs a positive number, got {Format(x)} at {name.Position}"),
                "sin" => Math.Sin(x),
                "cos" => Math.Cos(x),
                _ => Math.Tan(x),
            };
        }

        private static double Constant(Token name) => name.Text.ToLowerInvariant() switch
        {
            "pi" => Math.PI,
            "e" => Math.E,
            _ => throw new CalculatorException($"unknown name '{name.Text}' at {name.Position}; constants: pi, e (functions need parentheses, e.g. sqrt(2))"),
        };

        private void Enter(Token open)
        {
            if (++_depth > MaxDepth)
                throw new CalculatorException($"expression is nested too deeply at {open.Position} (at most {MaxDepth} levels of parentheses)");
        }

        private Token Next() => tokens[_index++];

        private void Expect(TokenKind kind, string what)
        {
            if (Current.Kind != kind)
                throw Current.Kind == TokenKind.End
                    ? new CalculatorException($"unexpected end of expression at {Current.Position}; expected {what}")
                    : new CalculatorException($"unexpected '{Current.Text}' at {Current.Position}; expected {what}");
            Next();
        }

        private static CalculatorException Unexpected(Token token) => token.Kind == TokenKind.End
            ? new CalculatorException($"unexpected end of expression at {token.Position}; expected a number, a name or '('")
            : new CalculatorException($"unexpected '{token.Text}' at {token.Position}");

        private static double Finite(double value, Token at) => double.IsFinite(value)
            ? value
            : throw new CalculatorException($"the result at {at.Position} is too large (overflow); the result must be a finite number");
    }
}
