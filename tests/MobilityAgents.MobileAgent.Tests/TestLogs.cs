using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>Keeps every log line of a host in memory (event id, level, category, message), for assertions and failure reports.</summary>
public sealed class TestLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<(int Id, LogLevel Level, string Category, string Message)> _entries = new();

    public IReadOnlyList<(int Id, LogLevel Level, string Category, string Message)> Entries => [.. _entries];

    public bool Has(int eventId) => _entries.Any(e => e.Id == eventId);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public override string ToString() =>
        string.Join(Environment.NewLine, _entries.Select(e => $"  [{e.Level}] {e.Id} {e.Category.Split('.')[^1]}: {e.Message}"));

    public void Dispose()
    {
    }

    private sealed class Logger(TestLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            string message = formatter(state, exception);
            if (exception is not null)
            {
                message += " | " + exception;
            }

            owner._entries.Enqueue((eventId.Id, logLevel, category, message));
        }
    }
}
